"""Triton kernels behind the fused losses (GPU; on CPU only under Triton's interpreter).

The losses never import this package's kernel modules unless a kernel will run: on a CUDA
tensor with Triton installed (it ships with CUDA builds of PyTorch), or on CPU when
``TRITON_INTERPRET=1`` was set before the first use (how the test suite checks the kernels on
a machine without a GPU; slow, for tests only), or when :mod:`lab.kernel_compilation`
compiles them for a GPU that is not there (nothing runs).
"""
import contextlib
import functools
import importlib.util
import os
from typing import Iterator, Optional

import torch

INTERPRET_ENV = 'TRITON_INTERPRET'
_compile_only_arch: Optional[int] = None


@functools.lru_cache(maxsize=None)
def triton_installed() -> bool:
    """Whether the ``triton`` package can be imported."""
    return importlib.util.find_spec('triton') is not None


def interpreting() -> bool:
    """Whether Triton kernels run under the interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get(INTERPRET_ENV, '0') == '1'


@contextlib.contextmanager
def compiling_for(arch: int) -> Iterator[None]:
    """Let the losses take their kernel path on CPU tensors while launches only compile
    (entered by :func:`lab.kernel_compilation.compile_only`, which compiles)."""
    global _compile_only_arch
    previous, _compile_only_arch = _compile_only_arch, arch
    try:
        yield
    finally:
        _compile_only_arch = previous


def kernels_run_on(tensor: torch.Tensor) -> bool:
    """Whether the Triton kernels can run (or, compiling only, be launched) on ``tensor``."""
    if not triton_installed():
        return False
    return tensor.is_cuda or (tensor.device.type == 'cpu' and
                              (interpreting() or _compile_only_arch is not None))


def require_kernels(tensor: torch.Tensor) -> None:
    """Raise a RuntimeError naming the fix if the Triton kernels cannot run on ``tensor``."""
    if not triton_installed():
        raise RuntimeError('The Triton kernels need the triton package (it ships with CUDA '
                           'builds of PyTorch; `pip install triton` otherwise).')
    if not kernels_run_on(tensor):
        raise RuntimeError(f'The Triton kernels run on CUDA tensors; on {tensor.device} they '
                           f'run only under the interpreter: set {INTERPRET_ENV}=1 before '
                           f'the first use (slow, for tests), or use the default '
                           f'implementation.')
