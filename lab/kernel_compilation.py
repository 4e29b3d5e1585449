"""Compile the Triton kernels for a GPU that is not there, and read what ptxas made of them.

Triton compiles ahead of time for any target it has a backend for, down to the cubin, with the
``ptxas`` it ships: no GPU and no CUDA driver needed. :func:`compile_only` makes every kernel
launch inside it compile for the given architecture instead of running (the outputs are left
uninitialised), so the code paths of the real losses can be driven on CPU tensors and every
specialisation they launch gets compiled exactly as the JIT would compile it on that GPU. That
checks what the interpreter does not (the compiler's typing of loop-carried values, constexpr
branches, pointer dtypes) and gives each kernel's registers, spills and shared memory, hence
its occupancy (:func:`resource_usage`). ``tools/compile_kernels.py`` is the command line.

This leans on Triton internals (the active-driver switch and ``JITFunction.run``'s warm-up
mode), present from Triton 3.2 to 3.9; it is a development tool, never on a loss's path.
"""
import contextlib
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List

import torch
from triton.backends.compiler import GPUTarget
from triton.runtime.driver import driver
from triton.runtime.jit import JITFunction

from imbfocal.kernels import INTERPRET_ENV, compiling_for, interpreting

# per SM, from NVIDIA's CUDA occupancy tables (compute capability 8.0 to 9.0)
REGISTERS_PER_SM = 65536
MAX_WARPS_PER_SM = {80: 64, 86: 48, 89: 48, 90: 64}
MAX_PROGRAMS_PER_SM = {80: 32, 86: 16, 89: 24, 90: 32}
SHARED_BYTES_PER_SM = {80: 167936, 86: 102400, 89: 102400, 90: 233472}
SHARED_RESERVED_PER_PROGRAM = 1024
REGISTER_GRANULE = 8  # registers per thread are allocated in multiples of 8 (256 per warp)


class _CompileOnlyDriver:
    """The driver calls ``JITFunction.run`` makes before it would launch: a fixed target.

    The device it reports is a name no GPU has, one per target, so the JIT's per-device
    caches (bound to a target when first made) never mix these kernels with a real GPU's
    or another target's.
    """

    def __init__(self, target: GPUTarget):
        self.target = target

    def get_current_target(self) -> GPUTarget:
        return self.target

    def get_current_device(self) -> str:
        return f'compile-only sm_{self.target.arch}'

    def get_current_stream(self, device: Any = None) -> int:
        return 0

    def get_active_torch_device(self) -> torch.device:
        return torch.device('cpu')


@dataclass
class CompiledLaunch:
    """One kernel launch compiled for the target: the kernel and its compiled form."""
    kernel: str
    compiled: Any  # triton.compiler.CompiledKernel


@contextlib.contextmanager
def compile_only(arch: int) -> Iterator[List[CompiledLaunch]]:
    """Inside the block, kernel launches compile for CUDA compute capability ``arch`` and return.

    The losses take their Triton path on CPU tensors (``use_impl('triton')``), every launch is
    compiled (and cached as the JIT would, under a device of its own) and appended to the
    yielded list, and nothing runs: outputs keep whatever their allocation held.

    The switch is process-wide (Triton's active driver, ``JITFunction.__getitem__``): a
    thread launching a kernel meanwhile would compile it too. For tools, not for training.

    Args:
        arch: Compute capability as an integer, e.g. 80 (A100) or 90 (H100).

    Yields:
        The list the compiled launches are appended to.

    Raises:
        RuntimeError: Under ``TRITON_INTERPRET=1``, where kernels are not compiled.
    """
    if interpreting():
        raise RuntimeError(f'compile_only compiles kernels, which {INTERPRET_ENV}=1 replaces '
                           f'by the interpreter: run it in a process without {INTERPRET_ENV}.')
    launches: List[CompiledLaunch] = []
    original_getitem = JITFunction.__getitem__

    def compile_launch(self, grid):
        def launch(*args, **kwargs):
            compiled = self.run(*args, grid=grid, warmup=True, **kwargs)
            launches.append(CompiledLaunch(self.fn.__name__, compiled))
            return compiled
        return launch

    # Triton >= 3.3 keeps the active driver in `_active` (None until a launch picks the
    # machine's), older ones in `active`; reading either must not create a driver
    previous_driver = vars(driver).get('_active', vars(driver).get('active'))
    driver.set_active(_CompileOnlyDriver(GPUTarget('cuda', arch, 32)))
    JITFunction.__getitem__ = compile_launch
    try:
        with compiling_for(arch):
            yield launches
    finally:
        JITFunction.__getitem__ = original_getitem
        driver.set_active(previous_driver)


@dataclass
class ResourceUsage:
    """What ptxas reports for one compiled kernel, and the occupancy that follows."""
    registers: int  # per thread
    spill_bytes: int  # spill stores + spill loads, per thread
    shared_bytes: int  # per program
    num_warps: int
    programs_per_sm: int
    warps_per_sm: int
    occupancy: float  # warps_per_sm / the SM's maximum

    def as_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)


def _ptxas(arch: int) -> str:
    """The ptxas Triton compiles with for ``arch`` (Triton 3.4+ ships two)."""
    from triton.backends.nvidia import compiler as nvidia
    if hasattr(nvidia, 'get_ptxas'):
        return nvidia.get_ptxas(arch).path
    return nvidia._path_to_binary('ptxas')[0]


def ptxas_report(ptx: str, arch: int) -> str:
    """ptxas's ``-v`` report (registers, spills) of a kernel's PTX."""
    target = re.search(r'^\s*\.target\s+(\w+)', ptx, re.MULTILINE).group(1)
    with tempfile.TemporaryDirectory() as folder:
        source = os.path.join(folder, 'kernel.ptx')
        with open(source, 'w') as file:
            file.write(ptx)
        result = subprocess.run(
            [_ptxas(arch), '-v', f'--gpu-name={target}', source, '-o',
             os.path.join(folder, 'kernel.cubin')], capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f'ptxas failed on the PTX Triton produced:\n{result.stderr}')
    return result.stderr


def _family(arch: int) -> int:
    """The row of the occupancy tables for compute capability ``arch``."""
    return arch if arch in MAX_WARPS_PER_SM else (90 if arch >= 90 else 80)


def programs_per_sm(registers: int, num_warps: int, shared_bytes: int, arch: int) -> int:
    """How many programs (CUDA blocks) of a kernel fit on one SM at once.

    The least of the limits on warps, blocks, registers (allocated per thread in multiples of
    :data:`REGISTER_GRANULE`) and shared memory (plus 1 KiB the driver reserves per block).
    """
    family = _family(arch)
    padded_registers = -(-registers // REGISTER_GRANULE) * REGISTER_GRANULE
    limits = [MAX_PROGRAMS_PER_SM[family], MAX_WARPS_PER_SM[family] // num_warps,
              REGISTERS_PER_SM // (padded_registers * 32 * num_warps)]
    if shared_bytes:
        limits.append(SHARED_BYTES_PER_SM[family] //
                      (shared_bytes + SHARED_RESERVED_PER_PROGRAM))
    return max(0, min(limits))


def resource_usage(compiled: Any, arch: int) -> ResourceUsage:
    """Registers, spills, shared memory and occupancy of a kernel compiled for ``arch``."""
    report = ptxas_report(compiled.asm['ptx'], arch)
    registers = int(re.search(r'Used (\d+) registers', report).group(1))
    spill_bytes = sum(int(value) for value in re.findall(r'(\d+) bytes spill', report))
    num_warps = compiled.metadata.num_warps
    shared_bytes = compiled.metadata.shared
    programs = programs_per_sm(registers, num_warps, shared_bytes, arch)
    warps = programs * num_warps
    return ResourceUsage(registers, spill_bytes, shared_bytes, num_warps, programs, warps,
                         warps / MAX_WARPS_PER_SM[_family(arch)])
