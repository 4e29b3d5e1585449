"""How the CPU fast paths cut ``(N, C)`` logits into row chunks and run them.

Chunks of about :data:`CHUNK_ELEMENTS` elements keep a chunk's temporaries in cache. By
default they run one after another in the caller's thread, each op with the caller's intra-op
threads. :func:`use_chunk_workers` (or ``IMBFOCAL_CHUNK_WORKERS=1`` in the environment) shares
them out between single-threaded workers instead, so that a machine busy with another process
slows a chunk, not every op; it makes a whole training step slower on an idle machine
(``docs/design.md``).
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, Iterator, List, Sequence, Tuple, TypeVar

import torch
from torch import Tensor

# Row chunks of about this many elements keep the CPU temporaries cache-resident; on other
# devices the whole tensor is one chunk.
CHUNK_ELEMENTS = {'cpu': 1 << 18}

Chunk = TypeVar('Chunk')
Result = TypeVar('Result')
_pools: Dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()
_workers = {'enabled': os.environ.get('IMBFOCAL_CHUNK_WORKERS', '0') == '1'}


def use_chunk_workers(enabled: bool) -> None:
    """Run the CPU chunks on single-threaded workers (True) or in the caller's thread (False,
    the default unless ``IMBFOCAL_CHUNK_WORKERS=1``)."""
    _workers['enabled'] = bool(enabled)


def chunk_workers_enabled() -> bool:
    """Whether :func:`run_chunks` shares chunks out between workers."""
    return _workers['enabled']


def chunk_rows(x: Tensor) -> int:
    """Rows per chunk: about ``CHUNK_ELEMENTS`` elements, at most all rows, at least one."""
    elements = CHUNK_ELEMENTS.get(x.device.type, x.numel())
    return max(1, min(x.size(0), elements // max(x.size(1), 1)))


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


def _pool(threads: int) -> ThreadPoolExecutor:
    """``threads`` workers, each with one intra-op thread, all started."""
    with _pools_lock:
        pool = _pools.get(threads)
        if pool is None:
            pool = ThreadPoolExecutor(threads, thread_name_prefix='imbfocal-chunks',
                                      initializer=torch.set_num_threads, initargs=(1, ))
            started = threading.Barrier(threads)
            list(pool.map(lambda _: started.wait(), range(threads)))
            # set_num_threads(1) in a worker also set the process's default for new threads;
            # the workers keep their 1, everything else gets the caller's count back
            torch.set_num_threads(threads)
            _pools[threads] = pool
    return pool


def run_chunks(work: Callable[[Chunk], Result], chunks: Sequence[Chunk]) -> List[Result]:
    """``[work(chunk) for chunk in chunks]``, in order; with :func:`use_chunk_workers` on, the
    chunks are shared out between as many single-threaded workers as the caller has intra-op
    threads.

    Each op of a chunk is small; run with several OpenMP threads, each op ends at a barrier
    that waits for the slowest thread, and on a machine shared with another busy process one
    descheduled thread stalls every op. Workers that each run whole chunks on one thread go on
    independently: a descheduled worker delays only its own chunk. The workers run in the
    caller's grad and inference modes.
    """
    threads = torch.get_num_threads()
    if not _workers['enabled'] or threads <= 1 or len(chunks) < 2:
        return [work(chunk) for chunk in chunks]
    grad, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()

    def task(chunk: Chunk) -> Result:
        with torch.set_grad_enabled(grad), torch.inference_mode(inference):
            return work(chunk)

    return list(_pool(threads).map(task, chunks))
