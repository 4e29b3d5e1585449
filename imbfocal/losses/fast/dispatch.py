"""Which implementation computes a loss (the chunking of the CPU paths is in :mod:`.chunks`).

Implementations (:func:`use_impl`):

* ``'fused'`` (default): the Triton kernels on CUDA tensors, else the chunked PyTorch paths;
* ``'torch'``: always the chunked PyTorch paths;
* ``'triton'``: always the kernels (on CPU only under ``TRITON_INTERPRET=1``, for tests);
* ``'reference'``: the autograd reference of each loss.

A process starts with ``IMBFOCAL_IMPL`` (default ``'fused'``); :func:`set_impl` changes it,
:func:`use_impl` for a block. Under ``'fused'`` a kernel is first checked against the PyTorch
path (:mod:`.selfcheck`) and replaced by it if it fails; ``'triton'`` forces the kernels,
unchecked.
"""
import contextlib
import os
from typing import Iterator

import torch
from torch import Tensor

from ... import kernels
from . import selfcheck

IMPLS = ('fused', 'torch', 'triton', 'reference')
IMPL_ENV = 'IMBFOCAL_IMPL'
# The kernels read half logits as they are (computing in float32) and write dL/dx in their
# dtype.
KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# Where 'fused' runs the kernels: CUDA tensors (the interpreter on CPU is for tests).
FUSED_KERNEL_DEVICES = ('cuda', )


def check_impl(impl: str) -> str:
    """Return ``impl``.

    Raises:
        ValueError: If ``impl`` is not one of :data:`IMPLS`.
    """
    if impl not in IMPLS:
        raise ValueError(f'impl must be one of {IMPLS}, got {impl!r} (from use_impl, set_impl '
                         f'or the {IMPL_ENV} environment variable)')
    return impl


_impl = check_impl(os.environ.get(IMPL_ENV, 'fused'))


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
    previous, _impl = _impl, check_impl(impl)
    try:
        yield
    finally:
        _impl = previous


def set_impl(impl: str) -> None:
    """Make the losses use ``impl`` from now on (for a whole run; see :func:`use_impl`).

    Raises:
        ValueError: If ``impl`` is not one of :data:`IMPLS`.
    """
    global _impl
    _impl = check_impl(impl)


def use_kernel(x: Tensor, family: str) -> bool:
    """Whether a Triton kernel of ``family`` computes the loss of logits ``x`` now.

    Under ``'fused'``, on a device of :data:`FUSED_KERNEL_DEVICES` where the kernels run, only
    once the family's kernels have passed their self-check for ``x``'s dtype and device.

    Raises:
        RuntimeError: Under ``use_impl('triton')`` where the kernels cannot run.
        ValueError: Under ``use_impl('triton')`` for logits not in :data:`KERNEL_DTYPES`.
    """
    if _impl == 'triton':
        kernels.require_kernels(x)
        if x.dtype not in KERNEL_DTYPES:
            raise ValueError(f'The Triton kernels take logits of {KERNEL_DTYPES}, got {x.dtype}')
        return True
    return (_impl == 'fused' and x.dtype in KERNEL_DTYPES
            and x.device.type in FUSED_KERNEL_DEVICES and kernels.kernels_run_on(x)
            and selfcheck.kernel_verified(family, x))
