"""Run the Triton kernels under Triton's interpreter on a machine without a GPU.

``TRITON_INTERPRET`` is read when a kernel is decorated, i.e. when ``imbfocal.kernels.*`` is
first imported, which no test does before this file is collected. With a GPU the kernels are
compiled and run on it, and the interpreter is left off.
"""
import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault('TRITON_INTERPRET', '1')

pytest.importorskip('triton', reason='the Triton kernels need the triton package')


def kernel_devices():
    """Where the kernels run here: the GPU if there is one, else the CPU (interpreted)."""
    return ['cuda'] if torch.cuda.is_available() else ['cpu']
