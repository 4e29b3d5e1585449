"""The first-use self-check of the Triton kernels: a kernel that returns wrong values, one
that raises and one that fails to compile each fall back to the PyTorch path with exactly one
warning, and training goes on with the PyTorch path's results.

On this CPU machine the kernels run under Triton's interpreter, and ``'fused'`` is let onto
CPU tensors (``FUSED_KERNEL_DEVICES``) so that it takes the path a CUDA tensor takes.
"""
import ast
import subprocess
import sys
import warnings

import pytest
import torch

from imbfocal.losses import AdaptiveFocalLoss, ParameterFreeLoss, use_impl
from imbfocal.losses.fast import dispatch, selfcheck

from conftest import kernel_devices

DEVICE = kernel_devices()[0]
COUNTS = [300, 120, 40, 9, 2]


@pytest.fixture(autouse=True)
def fused_on_this_device(monkeypatch):
    monkeypatch.setattr(dispatch, 'FUSED_KERNEL_DEVICES', ('cuda', 'cpu'))
    selfcheck.reset()
    yield
    selfcheck.reset()


def _train(loss_fn, steps=3):
    """``steps`` SGD steps of a linear classifier under ``loss_fn``; the losses and the
    layer's final weight."""
    torch.manual_seed(0)
    features = torch.randn(96, 8, device=DEVICE)
    labels = torch.arange(96, device=DEVICE) % (len(COUNTS) + 1)
    layer = torch.nn.Linear(8, len(COUNTS)).to(DEVICE)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.5)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(layer(features), labels, avg_factor=16.0)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, layer.weight.detach().clone()


def _afl():
    return AdaptiveFocalLoss(class_counts=COUNTS, agf_iters=10).train()


def _wrong_values(monkeypatch):
    from imbfocal.kernels import focal
    original = focal.focal_forward

    def wrong(*args, **kwargs):
        out = original(*args, **kwargs)
        return out._replace(grad=None if out.grad is None else out.grad * 1.1)

    monkeypatch.setattr(focal, 'focal_forward', wrong)


def _raises(monkeypatch):
    from imbfocal.kernels import focal

    def broken(*args, **kwargs):
        raise RuntimeError('injected: an illegal memory access was encountered')

    monkeypatch.setattr(focal, 'focal_forward', broken)


def _does_not_compile(monkeypatch):
    from triton.compiler.errors import CompilationError

    from imbfocal.kernels import focal

    class Uncompilable:
        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                raise CompilationError('x = 1', ast.parse('x = 1').body[0],
                                       'injected: unsupported instruction')
            return launch

    monkeypatch.setattr(focal, '_focal_kernel', Uncompilable())


@pytest.mark.parametrize('inject', [_wrong_values, _raises, _does_not_compile],
                         ids=['wrong values', 'raises', 'does not compile'])
def test_a_failing_kernel_falls_back_with_one_warning_and_trains_on(inject, monkeypatch):
    with use_impl('torch'):
        expected_losses, expected_weight = _train(_afl())
    inject(monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        losses, weight = _train(_afl())
        _train(_afl())  # a second run in the same process: no second warning
    warned = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(warned) == 1, [str(w.message) for w in caught]
    message = str(warned[0].message)
    assert 'focal Triton kernel' in message and 'failed its self-check' in message
    assert 'IMBFOCAL_IMPL=torch' in message and 'IMBFOCAL_KERNEL_SELFCHECK=0' in message
    assert selfcheck.verdicts() == {('focal', torch.float32, str(torch.device(DEVICE))): False}
    assert losses == pytest.approx(expected_losses, rel=1e-6)
    torch.testing.assert_close(weight, expected_weight)


def test_wrong_values_name_what_differs():
    from imbfocal.losses.kernel_checks import focal_check
    results = focal_check(torch.device(DEVICE), torch.float32)
    name = 'class-balanced + damping: dL/dx'
    kernel, reference, kind = results[name]
    problems = selfcheck.mismatches({name: (kernel * 1.1, reference, kind)}, torch.float32)
    assert len(problems) == 1 and problems[0].startswith(name) and 'values off' in problems[0]


def test_the_pf_kernel_is_checked_on_its_own(monkeypatch):
    from imbfocal.kernels import parameter_free
    original = parameter_free.pf_sums
    monkeypatch.setattr(parameter_free, 'pf_sums',
                        lambda *args: tuple(s * 1.01 for s in original(*args)))
    loss = ParameterFreeLoss(negative='mean')  # the form whose sums the PF kernels compute
    x = torch.randn(40, 5, device=DEVICE)
    labels = torch.arange(40, device=DEVICE) % 6
    with pytest.warns(RuntimeWarning, match='pf Triton kernel'):
        value = loss(x, labels, avg_factor=8.0)
    with use_impl('torch'):
        torch.testing.assert_close(value, loss(x, labels, avg_factor=8.0))
    _afl()(x, labels)  # the focal kernel is checked separately, and passes
    assert selfcheck.verdicts() == {('pf', torch.float32, str(torch.device(DEVICE))): False,
                                    ('focal', torch.float32, str(torch.device(DEVICE))): True}


@pytest.mark.parametrize('dtype', [torch.float32, torch.float16, torch.bfloat16])
def test_the_kernels_pass_their_self_check(dtype):
    for family in ('focal', 'pf'):
        assert selfcheck.run_check(family, torch.device(DEVICE), dtype) is None


def test_passing_kernel_computes_and_says_so(caplog):
    from mmengine.logging import MMLogger
    logger = MMLogger.get_instance('test_selfcheck_pass')
    with caplog.at_level('INFO'):
        logger.propagate = True
        _afl()(torch.randn(8, 5, device=DEVICE), torch.arange(8, device=DEVICE) % 6)
    assert selfcheck.verdicts() == {('focal', torch.float32, str(torch.device(DEVICE))): True}


def test_the_check_can_be_skipped(monkeypatch):
    calls = []
    monkeypatch.setenv(selfcheck.SELFCHECK_ENV, '0')
    monkeypatch.setitem(selfcheck._checks, 'focal', lambda *args: calls.append(1) or {})
    _afl()(torch.randn(8, 5, device=DEVICE), torch.arange(8, device=DEVICE) % 6)
    assert calls == [] and selfcheck.verdicts()[('focal', torch.float32,
                                                 str(torch.device(DEVICE)))]


@pytest.mark.parametrize('value, expected', [('torch', 'torch'), ('fused', 'fused')])
def test_the_environment_variable_sets_the_starting_impl(value, expected):
    code = 'from imbfocal.losses.fast import get_impl; print(get_impl())'
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         env={'IMBFOCAL_IMPL': value, 'PATH': ''}, check=True).stdout
    assert out.strip() == expected


def test_an_unknown_impl_in_the_environment_is_refused():
    result = subprocess.run([sys.executable, '-c', 'import imbfocal'], capture_output=True,
                            text=True, env={'IMBFOCAL_IMPL': 'cuda', 'PATH': ''})
    assert result.returncode != 0 and "got 'cuda'" in result.stderr and 'IMBFOCAL_IMPL' in \
        result.stderr
