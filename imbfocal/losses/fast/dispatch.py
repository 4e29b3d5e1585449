"""Which implementation computes a loss, and how the CPU paths cut the logits into chunks.

Implementations (:func:`use_impl`):

* ``'fused'`` (default): the Triton kernels on CUDA tensors, else the chunked PyTorch paths;
* ``'torch'``: always the chunked PyTorch paths;
* ``'triton'``: always the kernels (on CPU only under ``TRITON_INTERPRET=1``, for tests);
* ``'reference'``: the autograd reference of each loss.
"""
import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, Iterator, List, Sequence, Tuple, TypeVar

import torch
from torch import Tensor

from ... import kernels

IMPLS = ('fused', 'torch', 'triton', 'reference')
# The kernels read half logits as they are (computing in float32) and write dL/dx in their
# dtype.
KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# Row chunks of about this many elements keep the CPU temporaries cache-resident; on other
# devices the whole tensor is one chunk.
CHUNK_ELEMENTS = {'cpu': 1 << 18}
_impl = 'fused'


def get_impl() -> str:
    """The implementation the losses use now (see the module docstring)."""
    return _impl


@contextlib.contextmanager
def use_impl(impl: str) -> Iterator[None]:
    """Make the losses use ``impl`` inside the block (tests compare the implementations).

    Raises:
        ValueError: If ``impl`` is not one of :data:`IMPLS`.
    """
    global _impl
    if impl not in IMPLS:
        raise ValueError(f'impl must be one of {IMPLS}, got {impl!r}')
    previous, _impl = _impl, impl
    try:
        yield
    finally:
        _impl = previous


def use_kernel(x: Tensor) -> bool:
    """Whether a Triton kernel computes the loss of logits ``x`` under the current impl.

    Raises:
        RuntimeError: Under ``use_impl('triton')`` where the kernels cannot run.
        ValueError: Under ``use_impl('triton')`` for logits not in :data:`KERNEL_DTYPES`.
    """
    if _impl == 'triton':
        kernels.require_kernels(x)
        if x.dtype not in KERNEL_DTYPES:
            raise ValueError(f'The Triton kernels take logits of {KERNEL_DTYPES}, got {x.dtype}')
        return True
    return _impl == 'fused' and x.dtype in KERNEL_DTYPES and x.is_cuda and \
        kernels.kernels_run_on(x)


def chunk_rows(x: Tensor) -> int:
    """Rows per chunk: about ``CHUNK_ELEMENTS`` elements, at most all rows, at least one."""
    elements = CHUNK_ELEMENTS.get(x.device.type, x.numel())
    return max(1, min(x.size(0), elements // max(x.size(1), 1)))


Chunk = TypeVar('Chunk')
Result = TypeVar('Result')
_pools: Dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _single_threaded() -> None:
    torch.set_num_threads(1)  # OpenMP's thread count is per thread: the caller keeps its own


def run_chunks(work: Callable[[int, Chunk], Result], chunks: Sequence[Chunk]) -> List[Result]:
    """``[work(i, chunk) for i, chunk in enumerate(chunks)]``, in order, the chunks shared out
    between as many single-threaded workers as the caller has intra-op threads.

    Each op of a chunk is small; run with several OpenMP threads, each op ends at a barrier
    that waits for the slowest thread, and on a machine shared with another busy process one
    descheduled thread stalls every op. Workers that each run whole chunks on one thread
    instead go on independently: a descheduled worker delays only its own chunk.
    """
    threads = torch.get_num_threads()
    if threads <= 1 or len(chunks) < 2:
        return [work(i, chunk) for i, chunk in enumerate(chunks)]
    with _pools_lock:
        pool = _pools.get(threads)
        if pool is None:
            pool = _pools[threads] = ThreadPoolExecutor(
                threads, thread_name_prefix='imbfocal-chunks', initializer=_single_threaded)
    return list(pool.map(work, range(len(chunks)), chunks))


def row_chunks(x: Tensor, fg_rows: Tensor) -> Iterator[Tuple[int, int, slice]]:
    """``(r0, r1, own)`` per chunk of :func:`chunk_rows` rows of ``x``.

    Args:
        x: Logits ``(N, C)``.
        fg_rows: Sorted row indices of the foreground anchors.

    Yields:
        The chunk's rows ``[r0, r1)`` and the slice of ``fg_rows`` that falls in them.
    """
    n, rows = x.size(0), chunk_rows(x)
    bounds = torch.searchsorted(fg_rows, torch.arange(0, n + rows, rows,
                                                      device=x.device)).tolist()
    for k, r0 in enumerate(range(0, n, rows)):
        yield r0, min(r0 + rows, n), slice(bounds[k], bounds[k + 1])
