"""Which implementation computes a loss, and how the CPU paths cut the logits into chunks.

Implementations (:func:`use_impl`):

* ``'fused'`` (default): the Triton kernels on CUDA tensors, else the chunked PyTorch paths;
* ``'torch'``: always the chunked PyTorch paths;
* ``'triton'``: always the kernels (on CPU only under ``TRITON_INTERPRET=1``, for tests);
* ``'reference'``: the autograd reference of each loss.
"""
import contextlib
from typing import Iterator

import torch
from torch import Tensor

from ... import kernels

IMPLS = ('fused', 'torch', 'triton', 'reference')
# The kernels read half logits as they are (computing in float32) and write dL/dx in their
# dtype.
KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
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
