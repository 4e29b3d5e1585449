"""A first-use self-check of the Triton kernels, with the PyTorch path as the fallback.

The first time ``use_impl('fused')`` would send a loss family's computation to a Triton kernel
for a (family, dtype, device), :func:`kernel_verified` first runs that family's check (each
family registers one, :func:`register`): a small deterministic batch through the kernel and
through the chunked PyTorch path, comparing the loss, ``dL/dx`` and whatever else the kernel
returns. If the kernel disagrees, raises, or does not compile, one warning names what failed
and the switch, and that (family, dtype, device) uses the PyTorch path for the rest of the
process. The verdict is logged either way, so a user can see which path runs.

Tolerances (relative, absolute) against the PyTorch path, which computes in float32 from the
same logits: the loss ``1e-4, 1e-6`` for every logit dtype (both compute in float32; only the
order of the sums differs); ``dL/dx``, which the kernel writes in the logits' dtype,
``1e-4, 1e-6`` for float32, ``2e-3, 1e-5`` for float16 (half ulp 4.9e-4) and ``1.6e-2, 1e-4``
for bfloat16 (half ulp 3.9e-3).

Switches: ``IMBFOCAL_IMPL`` (``fused``, ``torch``, ``triton``, ``reference``) sets the
implementation a process starts with, as :func:`~.dispatch.use_impl` does for a block;
``IMBFOCAL_KERNEL_SELFCHECK=0`` trusts the kernels without the check.
"""
import os
import time
import warnings
from typing import Callable, Dict, List, Optional, Tuple

import torch
from mmengine.logging import print_log
from torch import Tensor

SELFCHECK_ENV = 'IMBFOCAL_KERNEL_SELFCHECK'
TOLERANCES = {
    'loss': {torch.float32: (1e-4, 1e-6), torch.float16: (1e-4, 1e-6),
             torch.bfloat16: (1e-4, 1e-6)},
    'grad': {torch.float32: (1e-4, 1e-6), torch.float16: (2e-3, 1e-5),
             torch.bfloat16: (1.6e-2, 1e-4)},
}
# A check returns {name: (kernel's tensor, PyTorch path's tensor, 'loss' | 'grad')}.
Check = Callable[[torch.device, torch.dtype], Dict[str, Tuple[Tensor, Tensor, str]]]

_checks: Dict[str, Check] = {}
_verdicts: Dict[Tuple[str, torch.dtype, str], bool] = {}


def register(family: str, check: Check) -> None:
    """Make ``check`` the self-check of the kernels of ``family`` (``'focal'``, ``'pf'``)."""
    _checks[family] = check


def mismatches(results: Dict[str, Tuple[Tensor, Tensor, str]], dtype: torch.dtype) -> List[str]:
    """What differs beyond the tolerances of ``dtype``, one line per compared tensor."""
    out = []
    for name, (kernel, reference, kind) in results.items():
        rtol, atol = TOLERANCES[kind][dtype]
        kernel, reference = kernel.detach().float().cpu(), reference.detach().float().cpu()
        if kernel.shape != reference.shape:
            out.append(f'{name}: shape {tuple(kernel.shape)}, expected {tuple(reference.shape)}')
            continue
        bad = ~torch.isclose(kernel, reference, rtol=rtol, atol=atol)
        if bad.any():
            worst = ((kernel - reference).abs() - atol - rtol * reference.abs()).argmax()
            out.append(f'{name}: {int(bad.sum())} of {bad.numel()} values off, e.g. '
                       f'{kernel.flatten()[worst]:.6g} against {reference.flatten()[worst]:.6g}'
                       f' (rtol {rtol:g}, atol {atol:g})')
    return out


def run_check(family: str, device: torch.device, dtype: torch.dtype) -> Optional[str]:
    """Run ``family``'s check; None if the kernel agrees, else what went wrong."""
    try:
        problems = mismatches(_checks[family](device, dtype), dtype)
    except Exception as error:  # any failure of the kernel (compiling included): fall back
        return f'raised {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ""}'
    return '; '.join(problems) or None


def kernel_verified(family: str, x: Tensor) -> bool:
    """Whether the kernels of ``family`` may compute on tensors like ``x``: checked the first
    time for each (family, dtype, device), then remembered for the process."""
    key = (family, x.dtype, str(x.device))
    if key in _verdicts:
        return _verdicts[key]
    if os.environ.get(SELFCHECK_ENV, '1') == '0' or family not in _checks:
        _verdicts[key] = True
        return True
    tic = time.perf_counter()
    problem = run_check(family, x.device, x.dtype)
    ms = 1e3 * (time.perf_counter() - tic)
    what = f'the {family} Triton kernel on {x.device} for {str(x.dtype)[6:]} logits'
    if problem is None:
        print_log(f'imbfocal: {what} agrees with the PyTorch path (self-check, {ms:.0f} ms); '
                  'the kernel computes these losses', logger='current')
        _verdicts[key] = True
        return True
    message = (f'imbfocal: {what} failed its self-check ({problem}); this process computes '
               'these losses with the PyTorch path instead (slower, same results). Set '
               "IMBFOCAL_IMPL=torch (or imbfocal.losses.use_impl('torch')) to choose it "
               f'from the start, or {SELFCHECK_ENV}=0 to skip the check.')
    warnings.warn(message, RuntimeWarning, stacklevel=4)
    print_log(message, logger='current', level=30)
    _verdicts[key] = False
    return False


def reset() -> None:
    """Forget every verdict (the next use checks again)."""
    _verdicts.clear()


def verdicts() -> Dict[Tuple[str, torch.dtype, str], bool]:
    """The verdicts so far: ``{(family, dtype, device): kernel used}``."""
    return dict(_verdicts)
