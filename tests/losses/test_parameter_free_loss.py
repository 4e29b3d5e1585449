"""Tests of the Parameter-Free loss (Du et al., TNNLS 2021) in its three forms.

Log base: the paper prints its worked examples with base-10 logarithms (e.g. its CE example,
``-log(0.4 * 0.8 * 0.7 * 0.4) = 1.05``, only holds in base 10). The loss uses natural logs, so
``loss_in_nats = paper_number * ln(10)``; the tests divide the loss by ``ln 10`` (since
``ln x = log10 x * ln 10``) and compare with the printed number to its printed precision.
"""
import math

import pytest
import torch

from imbfocal.losses.fast import chunks, dispatch
from imbfocal.losses.parameter_free_loss import (
    GaussianParameterFreeLoss,
    ParameterFreeLoss,
    gaussian_parameter_free_loss,
    parameter_free_loss,
    softmax_parameter_free_loss,
)

from loss_testing import value_and_grad

LN10 = math.log(10)
EPS = 1e-6

# --------------------------------------------------------------------------------------------
# Direct, loop-based references of the formulas (float64, one scalar at a time).
# --------------------------------------------------------------------------------------------


def _q(values, eps=EPS):
    """The paper's q = (sum + eps) / (count + eps) from a list of scalar tensors."""
    return (sum(values, torch.zeros((), dtype=torch.float64)) + eps) / (len(values) + eps)


def ref_sigmoid_pf(logits, labels, valid, hard=False):
    """Per-class terms -log q+_c - log q-_c, looping over classes and anchors."""
    n, c = logits.shape
    p = torch.sigmoid(logits)
    terms = []
    for k in range(c):
        pos = [p[i, k] for i in range(n) if valid[i] and labels[i] == k]
        neg = []
        for i in range(n):
            if valid[i] and labels[i] != k:
                r = 1 - p[i, k]
                neg.append(torch.ones_like(r) if hard and r.item() > 0.5 else r)
        terms.append(-torch.log(_q(pos)) - torch.log(_q(neg)))
    return torch.stack(terms)


def ref_softmax_pf(logits, labels, valid, hard=False):
    """Eq. (9)-(10): per-class -log q_j, q_j the mean own-class softmax probability."""
    n, m = logits.shape
    p = torch.softmax(logits, dim=1)
    terms = []
    for j in range(m):
        own = []
        for i in range(n):
            if valid[i] and labels[i] == j:
                r = p[i, j]
                own.append(torch.ones_like(r) if hard and j == m - 1 and r.item() > 0.5 else r)
        terms.append(-torch.log(_q(own)))
    return torch.stack(terms)


def ref_gaussian_pf(prob, heat, gamma=4.0):
    """Per-channel -log q+ - log q-; q- weighted by (1 - t)^gamma over non-peak pixels."""
    b, c, h, w = prob.shape
    terms = []
    for k in range(c):
        pos, neg_num, neg_cnt = [], 0.0, 0.0
        for i in range(b):
            for y in range(h):
                for x in range(w):
                    p, t = prob[i, k, y, x], heat[i, k, y, x]
                    if t == 1:
                        pos.append(p)
                    else:
                        neg_num = neg_num + (1 - t)**gamma * (1 - p)
                        neg_cnt = neg_cnt + (1 - t)**gamma
        q_neg = (neg_num + EPS) / (neg_cnt + EPS)
        terms.append(-torch.log(_q(pos)) - torch.log(q_neg))
    return torch.stack(terms)


def _batch(n, c, seed, ignore_frac=0.25, bg_frac=0.6, scale=3.0):
    """Random float64 logits (N, C), labels in [0, C] (C = background), a 0/1 weight."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g, dtype=torch.float64) * scale
    labels = torch.randint(0, c, (n, ), generator=g)
    labels[torch.rand(n, generator=g) < bg_frac] = c
    weight = (torch.rand(n, generator=g) >= ignore_frac).double()
    return logits, labels, weight


def _heatmap(b, c, h, w, seed, peaks=3):
    """Random probabilities and a Gaussian-like heatmap with ``peaks`` exact 1s per image."""
    g = torch.Generator().manual_seed(seed)
    prob = torch.rand(b, c, h, w, generator=g, dtype=torch.float64) * 0.9 + 0.05
    heat = torch.rand(b, c, h, w, generator=g, dtype=torch.float64) * 0.95
    for i in range(b):
        for _ in range(peaks):
            k, y, x = (int(torch.randint(s, (1, ), generator=g)) for s in (c, h, w))
            heat[i, k, y, x] = 1.0
    return prob, heat


# --------------------------------------------------------------------------------------------
# The paper's worked examples (sections III-A and III-D).
# --------------------------------------------------------------------------------------------
# One minority sample and three majority samples; the probability of each sample's own class
# at iteration k is 0.4 (minority) and 0.8, 0.7, 0.4 (majority).
# PF^k      = -(1/2) log10(0.4) - (1/2) log10((0.8 + 0.7 + 0.4) / 3)
#           = 0.5 * 0.397940 + 0.5 * 0.198368                    = 0.298154 -> printed 0.298
# PF_ma^k+1 (last majority 0.4 -> 0.9)
#           = 0.5 * 0.397940 - 0.5 * log10(2.4 / 3) = 0.198970 + 0.048455 = 0.247425
#             -> printed 0.2475: the paper adds its rounded terms, 0.199 + 0.0485; the exact
#                value is 0.2474 to 4 places, so this one is compared to within 1e-4 (one unit
#                of the last printed digit) and its rounding is reproduced separately.
# PF_mi^k+1 (minority 0.4 -> 0.9)
#           = -0.5 * log10(0.9) + 0.5 * 0.198368 = 0.022879 + 0.099184 = 0.122063 -> 0.122
PAPER_CASES = [
    # (minority prob, majority probs, printed PF, tolerance)
    (0.4, (0.8, 0.7, 0.4), 0.298, 0.5e-3),
    (0.4, (0.8, 0.7, 0.9), 0.2475, 1e-4),
    (0.9, (0.8, 0.7, 0.4), 0.122, 0.5e-3),
]


def _paper_softmax_logits(p_min, p_maj):
    """Two-class softmax logits (column 0 minority, 1 majority) giving the own-class probs."""
    rows = [[p_min, 1 - p_min]] + [[1 - p, p] for p in p_maj]
    return torch.tensor(rows, dtype=torch.float64).log(), torch.tensor([0, 1, 1, 1])


@pytest.mark.parametrize('p_min,p_maj,printed,tol', PAPER_CASES)
def test_paper_examples_softmax(p_min, p_maj, printed, tol):
    # Eq. (9)-(10) with M = 2 classes, in nats; / ln 10 gives the paper's base-10 value.
    logits, labels = _paper_softmax_logits(p_min, p_maj)
    loss = softmax_parameter_free_loss(logits, labels)
    assert abs(loss.item() / LN10 - printed) <= tol
    loss_mod = ParameterFreeLoss(use_sigmoid=False, negative='mean')(logits, labels)
    assert loss_mod.item() == pytest.approx(loss.item(), rel=1e-12)


@pytest.mark.parametrize('p_min,p_maj,printed,tol', PAPER_CASES)
def test_paper_examples_sigmoid(p_min, p_maj, printed, tol):
    # One-vs-all with C = 1: the minority is class 0, the majority is background (label 1 = C),
    # p is the minority probability, so a majority sample of own-class prob r has p = 1 - r.
    # This is eq. (13): -log q+ - log q-, i.e. twice eq. (9) with M = 2 (no 1/M in (13)).
    p = torch.tensor([p_min] + [1 - r for r in p_maj], dtype=torch.float64)
    loss = parameter_free_loss(torch.logit(p).unsqueeze(1), torch.tensor([0, 1, 1, 1]))
    assert abs(loss.item() / 2 / LN10 - printed) <= tol


def test_paper_example_rounding_of_0_2475():
    # The paper's 0.2475 = round(0.5 * -log10 q_min, 3) + round(0.5 * -log10 q_maj, 4)
    #                    = round(0.198970, 3) + round(0.048455, 4) = 0.199 + 0.0485.
    logits, labels = _paper_softmax_logits(0.4, (0.8, 0.7, 0.9))
    terms = softmax_parameter_free_loss(logits, labels, reduction='none') / LN10
    assert round(terms[0].item() / 2, 3) + round(terms[1].item() / 2, 4) == pytest.approx(0.2475)
    # and the exact value is 0.247425: the per-class 'none' terms are -log10(0.4) and
    # -log10(2.4 / 3), each with the paper's eps: q = (sum + eps) / (count + eps).
    expected = [-math.log10((0.4 + EPS) / (1 + EPS)), -math.log10((2.4 + EPS) / (3 + EPS))]
    assert terms.tolist() == pytest.approx(expected, rel=1e-12)


def test_paper_example_changes():
    # The paper's point: raising the minority probability 0.4 -> 0.9 lowers PF far more
    # (0.298 -> 0.122) than raising a majority one by the same amount (0.298 -> 0.2475).
    loss = [softmax_parameter_free_loss(*_paper_softmax_logits(a, b)).item() / LN10
            for a, b, _, _ in PAPER_CASES]
    assert loss[0] - loss[2] > loss[0] - loss[1] > 0


def test_paper_outlier_example_arithmetic_mean():
    # Sec. III-D: majority probs 0.001, 0.8, 0.9 and one minority 0.2. PF's q for the majority
    # is the arithmetic mean (0.001 + 0.8 + 0.9) / 3 = 0.567 -> printed 0.57 (the geometric
    # mean WCE uses would be (0.001 * 0.8 * 0.9) ** (1/3) = 0.0896 -> printed 0.09).
    logits, labels = _paper_softmax_logits(0.2, (0.001, 0.8, 0.9))
    q = torch.exp(-softmax_parameter_free_loss(logits, labels, reduction='none'))
    assert abs(q[1].item() - 0.57) <= 0.005
    assert q[0].item() == pytest.approx(0.2, rel=1e-5)


# --------------------------------------------------------------------------------------------
# Against the loop references.
# --------------------------------------------------------------------------------------------
SHAPES = [(1, 1), (7, 3), (40, 5), (64, 2)]


@pytest.mark.parametrize('n,c', SHAPES)
@pytest.mark.parametrize('hard', [False, True])
def test_sigmoid_matches_reference(n, c, hard):
    logits, labels, weight = _batch(n, c, seed=n * 10 + c)
    logits.requires_grad_(True)
    terms = parameter_free_loss(logits, labels, weight, hard_majority=hard, reduction='none')
    ref = ref_sigmoid_pf(logits, labels, weight > 0, hard=hard)
    torch.testing.assert_close(terms, ref, rtol=1e-10, atol=1e-12)
    (g, ) = torch.autograd.grad(terms.mean(), logits)
    (g_ref, ) = torch.autograd.grad(ref.mean(), logits)
    torch.testing.assert_close(g, g_ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize('n,c', SHAPES)
@pytest.mark.parametrize('hard', [False, True])
def test_softmax_matches_reference(n, c, hard):
    # Softmax heads: C + 1 logits per anchor, background last, labels in [0, C].
    logits, labels, weight = _batch(n, c + 1, seed=n + c)
    labels = labels.clamp(max=c)
    logits.requires_grad_(True)
    terms = softmax_parameter_free_loss(logits, labels, weight, hard_majority=hard,
                                        reduction='none')
    ref = ref_softmax_pf(logits, labels, weight > 0, hard=hard)
    assert terms.shape == (c + 1, )
    torch.testing.assert_close(terms, ref, rtol=1e-10, atol=1e-12)
    (g, ) = torch.autograd.grad(terms.mean(), logits)
    (g_ref, ) = torch.autograd.grad(ref.mean(), logits)
    torch.testing.assert_close(g, g_ref, rtol=1e-9, atol=1e-12)


def test_hard_majority_sets_easy_negatives_to_one():
    # C = 1; negatives with p = 0.1 (1 - p = 0.9 > 0.5, easy: counts as 1) and p = 0.7
    # (1 - p = 0.3, hard). q- = (1 + 0.3) / 2 = 0.65 for PFH vs (0.9 + 0.3) / 2 = 0.6 for PF.
    # One positive with p = 0.5: q+ = 0.5. PFH = -ln 0.5 - ln 0.65 = 1.124.
    x = torch.logit(torch.tensor([[0.5], [0.1], [0.7]], dtype=torch.float64)).requires_grad_()
    y = torch.tensor([0, 1, 1])
    pfh = parameter_free_loss(x, y, hard_majority=True, eps=1e-12)
    assert pfh.item() == pytest.approx(-math.log(0.5) - math.log(0.65), rel=1e-9)
    pf = parameter_free_loss(x, y, eps=1e-12)
    assert pf.item() == pytest.approx(-math.log(0.5) - math.log(0.6), rel=1e-9)
    # The constant passes no gradient to the easy negative; the hard one gets
    # d(-ln q-)/dx = p (1 - p) / (sum of 1 - p) = 0.7 * 0.3 / 1.3.
    (g, ) = torch.autograd.grad(pfh, x)
    assert g[1, 0].item() == 0
    assert g[2, 0].item() == pytest.approx(0.7 * 0.3 / 1.3, rel=1e-9)


def test_gradient_larger_on_minority_positive():
    # The paper's claim: PF attends to the minority class. Two classes, all logits 0
    # (p = 1/2); class 0 has 2 positives, class 1 has 50, plus 200 background anchors.
    # d PF / d x_ic for a positive of class c = -(1/C) p (1 - p) / sum_{P_c} p
    #                                         = -(1/2) * 0.25 / (0.5 * |P_c|) = -0.25 / |P_c|,
    # so -0.125 on a minority positive and -0.005 on a majority one: 25x larger, whereas
    # cross-entropy gives both p - 1 = -0.5.
    labels = torch.tensor([0] * 2 + [1] * 50 + [2] * 200)
    x = torch.zeros(252, 2, dtype=torch.float64, requires_grad=True)
    (g, ) = torch.autograd.grad(parameter_free_loss(x, labels, eps=1e-12), x)
    g_min, g_maj = g[0, 0].item(), g[2, 1].item()
    assert abs(g_min) > abs(g_maj)
    assert g_min == pytest.approx(-0.25 / 2, rel=1e-6)
    assert g_maj == pytest.approx(-0.25 / 50, rel=1e-6)
    # Softmax form, 3 columns (background last), all logits 0 so p = 1/3 everywhere:
    # d PF / d x_ic = -(1/M) p (1 - p) / sum_{P_c} p = -(1/3) (2/9) / (|P_c| / 3)
    #              = -(2/9) / |P_c|: -1/9 on a minority positive, -2/450 on a majority one.
    xs = torch.zeros(252, 3, dtype=torch.float64, requires_grad=True)
    (g, ) = torch.autograd.grad(softmax_parameter_free_loss(xs, labels, eps=1e-12), xs)
    assert g[0, 0].item() == pytest.approx(-2 / 9 / 2, rel=1e-6)
    assert g[2, 1].item() == pytest.approx(-2 / 9 / 50, rel=1e-6)


@pytest.mark.parametrize('b,c,h,w', [(1, 1, 3, 4), (2, 3, 5, 6)])
def test_gaussian_matches_reference(b, c, h, w):
    prob, heat = _heatmap(b, c, h, w, seed=b * 100 + c)
    prob.requires_grad_(True)
    terms = gaussian_parameter_free_loss(prob, heat, reduction='none')
    ref = ref_gaussian_pf(prob, heat)
    torch.testing.assert_close(terms, ref, rtol=1e-10, atol=1e-12)
    (g, ) = torch.autograd.grad(terms.mean(), prob)
    (g_ref, ) = torch.autograd.grad(ref.mean(), prob)
    torch.testing.assert_close(g, g_ref, rtol=1e-9, atol=1e-12)
    loss = GaussianParameterFreeLoss(negative='mean')(
        prob, heat, avg_factor=max(1, int(heat.eq(1).sum())))
    assert loss.item() == pytest.approx(ref.mean().item(), rel=1e-10)


def test_gaussian_no_peaks():
    # No t == 1 anywhere: every positive term is -log((0 + eps) / (0 + eps)) = 0, so the loss
    # is the mean over channels of -log q-; finite, and the gradient only pushes p down.
    prob, heat = _heatmap(2, 3, 4, 4, seed=7, peaks=0)
    prob.requires_grad_(True)
    loss = gaussian_parameter_free_loss(prob, heat)
    ref = ref_gaussian_pf(prob, heat)
    assert loss.item() == pytest.approx(ref.mean().item(), rel=1e-10)
    (g, ) = torch.autograd.grad(loss, prob)
    assert torch.isfinite(g).all() and (g >= 0).all()


# --------------------------------------------------------------------------------------------
# Gradcheck (float64) of every form.
# --------------------------------------------------------------------------------------------
def _away_from_half(logits):
    """Keep |x| >= 0.2 so PFH's 0.5 threshold is not crossed by the finite differences."""
    return torch.where(logits.abs() < 0.2, logits.sign() * 0.2 + (logits == 0) * 0.2, logits)


@pytest.mark.parametrize('targets', ['labels', 'onehot'])
@pytest.mark.parametrize('hard', [False, True])
def test_gradcheck_sigmoid(hard, targets):
    # Integer labels take the gather/scatter path, float targets the dense (N, C) path.
    logits, labels, weight = _batch(12, 3, seed=1, scale=2.0)
    logits = _away_from_half(logits).requires_grad_()
    weight[0] = 0.5  # a non-binary weight too
    if targets == 'onehot':
        labels = (labels.unsqueeze(1) == torch.arange(3)).double()
    assert torch.autograd.gradcheck(
        lambda x: parameter_free_loss(x, labels, weight, hard_majority=hard, reduction='none'),
        (logits, ))


@pytest.mark.parametrize('hard', [False, True])
def test_label_path_equals_dense_path(hard):
    # Integer labels (gather/scatter, no dense targets) == one-hot float targets (dense),
    # values and gradients, ignored anchors and a label -1 on an ignored anchor included.
    x, y, w = _batch(50, 4, seed=31)
    y[w == 0] = -1
    onehot = (y.unsqueeze(1) == torch.arange(4)).double()
    x.requires_grad_()
    a = parameter_free_loss(x, y, w, hard_majority=hard, reduction='none')
    b = parameter_free_loss(x, onehot, w, hard_majority=hard, reduction='none')
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torch.autograd.grad(a.sum(), x)[0],
                               torch.autograd.grad(b.sum(), x)[0], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize('weighted', [False, True])
@pytest.mark.parametrize('hard', [False, True])
def test_fused_sums_match_reference_across_chunks(monkeypatch, hard, weighted):
    # The fused Function (row chunks of 3 here, so chunks end mid-batch and the last is
    # ragged) against the dense autograd path, in value and gradient; float32 logits with
    # p rounding to 1 (x = 30) and ignored anchors labelled -1.
    monkeypatch.setitem(chunks.CHUNK_ELEMENTS, 'cpu', 3 * 7)
    x, y, w = _batch(40, 7, seed=5, scale=4.0)
    x = x.float()
    x[0, :3] = torch.tensor([30.0, -30.0, 0.0])
    y[w == 0] = -1
    w = w.float() * (torch.linspace(0.5, 2.0, 40) if weighted else 1)
    results = []
    for impl in ('fused', 'reference'):
        logits = x.clone().requires_grad_()
        with dispatch.use_impl(impl):
            loss = parameter_free_loss(logits, y, w, hard_majority=hard, reduction='none')
        (grad, ) = torch.autograd.grad(loss, logits, torch.linspace(0.1, 1.0, 7))
        results.append((loss.detach(), grad))
    torch.testing.assert_close(results[0], results[1], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('hard', [False, True])
def test_gradcheck_softmax(hard):
    logits, labels, weight = _batch(12, 4, seed=2, scale=2.0)
    labels = labels.clamp(max=3)
    labels[:3] = 3
    logits[:3, 3] += 3.0  # some background probabilities above 0.5 for PFH
    logits.requires_grad_()
    fn = lambda x: softmax_parameter_free_loss(  # noqa: E731
        x, labels, weight, hard_majority=hard, reduction='none')
    assert torch.autograd.gradcheck(fn, (logits, ))


@pytest.mark.parametrize('hard', [False, True])
def test_gradcheck_gaussian(hard):
    prob, heat = _heatmap(2, 2, 3, 3, seed=3)
    prob = torch.where((prob - 0.5).abs() < 0.05, prob + 0.1, prob).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda p: gaussian_parameter_free_loss(p, heat, hard_majority=hard, reduction='none'),
        (prob, ))


# --------------------------------------------------------------------------------------------
# Reliability: extreme logits, empty / all-ignored / no-positive batches, autocast.
# --------------------------------------------------------------------------------------------
def _sigmoid_pf(x, y, w=None, **kw):
    return parameter_free_loss(x, y, w, **kw)


def _softmax_pf(x, y, w=None, **kw):
    return softmax_parameter_free_loss(x, y.clamp(max=x.size(1) - 1), w, **kw)


FORMS = {
    'sigmoid': _sigmoid_pf,
    'pfh': lambda x, y, w=None, **kw: _sigmoid_pf(x, y, w, hard_majority=True, **kw),
    'softmax': _softmax_pf,
    'softmax_pfh': lambda x, y, w=None, **kw: _softmax_pf(x, y, w, hard_majority=True, **kw),
}


@pytest.mark.parametrize('form', FORMS)
def test_extreme_logits_finite(form):
    g = torch.Generator().manual_seed(0)
    x = ((torch.rand(200, 4, generator=g) * 200 - 100)).requires_grad_()
    x.data[:4] = torch.tensor([-100.0, 100.0, -100.0, 100.0]).unsqueeze(1)
    y = torch.randint(0, 5, (200, ), generator=g)
    loss = FORMS[form](x, y)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


def test_extreme_probabilities_gaussian_finite():
    prob = torch.tensor([0.0, 1.0, 0.0, 1.0]).view(1, 1, 2, 2).requires_grad_()
    heat = torch.tensor([1.0, 0.0, 0.3, 1.0]).view(1, 1, 2, 2)
    loss = gaussian_parameter_free_loss(prob, heat)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(prob.grad).all()


def test_confident_wrong_negatives_keep_gradient():
    # p rounds to 1 in float32 for x = 30, but 1 - p is computed as sigmoid(-x), so the
    # negative term still pushes those logits down (it would be exactly 0 from 1 - p).
    x = torch.full((10, 1), 30.0, requires_grad=True)
    y = torch.tensor([0] + [1] * 9)
    parameter_free_loss(x, y).backward()
    assert (x.grad[1:] > 0).all()


@pytest.mark.parametrize('form', FORMS)
def test_empty_batch(form):
    x = torch.zeros(0, 4, requires_grad=True)
    loss = FORMS[form](x, torch.zeros(0, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0 and x.grad.shape == (0, 4)


def test_empty_heatmap():
    prob = torch.zeros(0, 3, 4, 4, requires_grad=True)
    loss = gaussian_parameter_free_loss(prob, torch.zeros(0, 3, 4, 4))
    loss.backward()
    assert loss.item() == 0 and prob.grad.shape == prob.shape


@pytest.mark.parametrize('form', ['sigmoid', 'pfh'])
def test_no_positives(form):
    # All anchors background: every q+_c is eps/eps = 1 (term 0), so PF is the mean of the
    # negative terms -log(mean over anchors of 1 - p).
    x = torch.randn(30, 3, dtype=torch.float64, requires_grad=True)
    loss = FORMS[form](x, torch.full((30, ), 3))
    ref = ref_sigmoid_pf(x, torch.full((30, ), 3), [True] * 30, hard=form == 'pfh').mean()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-10)
    loss.backward()
    assert torch.isfinite(x.grad).all() and (x.grad >= 0).all()


@pytest.mark.parametrize('form', FORMS)
def test_all_ignored(form):
    # Weight 0 everywhere: every set is empty, every q is 1, the loss is 0 with zero gradient.
    x = torch.randn(20, 4, requires_grad=True)
    loss = FORMS[form](x, torch.randint(0, 5, (20, )), torch.zeros(20))
    loss.backward()
    assert loss.item() == 0 and (x.grad == 0).all()


def test_all_ignored_heatmap():
    prob, heat = _heatmap(1, 2, 3, 3, seed=5)
    prob.requires_grad_()
    loss = gaussian_parameter_free_loss(prob, heat, torch.zeros_like(prob))
    loss.backward()
    assert loss.item() == 0 and (prob.grad == 0).all()


def _cpu_autocast_ok(dtype):
    try:
        with torch.autocast('cpu', dtype=dtype):
            torch.nn.Linear(2, 2)(torch.ones(1, 2))
        return True
    except RuntimeError:  # pragma: no cover - old torch without CPU fp16 autocast
        return False


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('form', list(FORMS) + ['gaussian'])
def test_autocast(dtype, form):
    if not _cpu_autocast_ok(dtype):
        pytest.skip(f'CPU autocast does not support {dtype}')
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 4)
    feats = torch.randn(64, 8)
    y = torch.randint(0, 5, (64, ))
    heat = torch.rand(64, 4).clamp(max=0.9)
    heat[::9, 1] = 1.0

    def run(inp):
        if form == 'gaussian':
            return gaussian_parameter_free_loss(inp, heat.view(4, 4, 4, 4))
        return FORMS[form](inp, y)

    with torch.autocast('cpu', dtype=dtype):
        x = layer(feats)
        # The heatmap form takes probabilities: the head's sigmoid runs under autocast too.
        inp = x.sigmoid().view(4, 4, 4, 4) if form == 'gaussian' else x
        assert inp.dtype == dtype
        loss = run(inp)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(layer.weight.grad).all()
    # Equal to the float32 loss of the same half-precision inputs.
    assert loss.item() == pytest.approx(run(inp.detach().float()).item(), rel=1e-5)


# --------------------------------------------------------------------------------------------
# reduction / weight / avg_factor / reduction_override / loss_weight / targets.
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize('form', FORMS)
def test_binary_weight_selects_anchors(form):
    # weight 0 == the anchor is not there.
    x, y, w = _batch(40, 3, seed=21)
    keep = w > 0
    assert FORMS[form](x, y, w).item() == pytest.approx(FORMS[form](x[keep], y[keep]).item(),
                                                        rel=1e-12)


@pytest.mark.parametrize('form', FORMS)
def test_integer_weight_is_repetition(form):
    # A weight is a multiplicity in the weighted means: weight 2 == the anchor twice, and
    # weights 1.5 and 0.5 on two copies == weight 2 (sums weighted, counts weighted).
    x, y, _ = _batch(20, 3, seed=22)
    w = torch.ones(20, dtype=torch.float64)
    w[:5] = 2
    rep = torch.cat([torch.arange(20), torch.arange(5)])
    expected = FORMS[form](x[rep], y[rep]).item()
    assert FORMS[form](x, y, w).item() == pytest.approx(expected, rel=1e-12)
    w2 = torch.cat([torch.ones(20, dtype=torch.float64), torch.ones(5, dtype=torch.float64)])
    w2[:5], w2[20:] = 1.5, 0.5
    assert FORMS[form](x[rep], y[rep], w2).item() == pytest.approx(expected, rel=1e-12)


def test_elementwise_weight_and_soft_targets():
    x, y, w = _batch(25, 3, seed=23)
    onehot = (y.unsqueeze(1) == torch.arange(3)).double()
    base = parameter_free_loss(x, y, w)
    # One-hot float targets == integer labels; an (N, C) weight equal per row == (N,) weight.
    assert parameter_free_loss(x, onehot, w).item() == pytest.approx(base.item(), rel=1e-12)
    assert parameter_free_loss(x, y, w.unsqueeze(1).expand(25, 3)).item() == pytest.approx(
        base.item(), rel=1e-12)
    # Zeroing class 0's column of an (N, C) weight only empties class 0's sets (term 0).
    wc = w.unsqueeze(1).repeat(1, 3)
    wc[:, 0] = 0
    terms = parameter_free_loss(x, y, wc, reduction='none')
    assert terms[0].item() == 0
    torch.testing.assert_close(terms[1:], parameter_free_loss(x, y, w, reduction='none')[1:])
    # Soft targets are memberships: positives weighted by t, negatives by 1 - t (eq. (13)).
    t = torch.full((4, 1), 0.25, dtype=torch.float64)
    xs = torch.zeros(4, 1, dtype=torch.float64)  # p = 0.5: q+ = q- = 0.5
    assert parameter_free_loss(xs, t, eps=1e-12).item() == pytest.approx(2 * math.log(2),
                                                                      rel=1e-9)


def test_label_range_errors():
    loss = ParameterFreeLoss(use_sigmoid=True, negative='mean', hard_majority=True)
    x = torch.zeros(5, 3)
    with pytest.raises(ValueError, match='labels'):
        loss(x, torch.tensor([0, 1, 2, 3, 4]))  # 4 > C = 3
    # An out-of-range label on an ignored anchor is fine (heads may mark ignores that way).
    loss(x, torch.tensor([0, 1, 2, 3, -1]), torch.tensor([1.0, 1, 1, 1, 0]))
    with pytest.raises(ValueError, match='labels'):
        ParameterFreeLoss(use_sigmoid=False, negative='mean')(
            x, torch.tensor([0, 1, 2, 3, 0]))  # M = 3


# --------------------------------------------------------------------------------------------
# The dense-head forms (negative='focal'): PF's positive term, focal loss's negatives.
# --------------------------------------------------------------------------------------------
def test_dense_form_hand_computed():
    # 3 anchors, C = 2, x = 0 (p = 1/2, l = ln 2): anchor 0 of class 0, anchor 1 of class 0,
    # anchor 2 background. Positive term: class 0 is the only class present, q+_0 = 1/2:
    # alpha * -log(1/2) = 0.25 ln 2. Negatives: the 4 elements with t = 0 (anchors 0 and 1 in
    # column 1, anchor 2 in both), each (1 - alpha) p^2 l = 0.75 / 4 ln 2 = 3 ln2 / 16, summed
    # (12 ln2 / 16 = 0.75 ln 2) and divided by the 2 positives: 0.375 ln 2. Total 0.625 ln 2.
    loss = ParameterFreeLoss()
    value = loss(torch.zeros(3, 2, dtype=torch.float64), torch.tensor([0, 0, 2]))
    assert value.item() == pytest.approx(0.625 * math.log(2), rel=1e-6)
    # avg_factor replaces the counted positives: 4 -> negatives 0.1875 ln 2
    value = loss(torch.zeros(3, 2, dtype=torch.float64), torch.tensor([0, 0, 2]), avg_factor=4)
    assert value.item() == pytest.approx((0.25 + 0.1875) * math.log(2), rel=1e-6)
    # 'none': per-class terms whose mean is the loss; 'sum' is C times it
    terms = loss(torch.zeros(3, 2), torch.tensor([0, 0, 2]), reduction_override='none')
    assert terms.shape == (2, ) and terms.mean().item() == pytest.approx(
        0.625 * math.log(2), rel=1e-6)
    assert loss(torch.zeros(3, 2), torch.tensor([0, 0, 2]),
                reduction_override='sum').item() == pytest.approx(1.25 * math.log(2), rel=1e-6)


def test_dense_form_negatives_are_focal_losses():
    """Background anchors get exactly MMDetection's focal-loss gradient, normalised by the
    positives: ~1e3 times the paper form's, whose mean runs over every negative."""
    from mmdet.models.losses import FocalLoss
    logits, labels, weight = _batch(400, 5, seed=3)
    background = labels == 5
    ours = value_and_grad(ParameterFreeLoss(), logits, labels, weight, avg_factor=7.0)[1]
    focal = value_and_grad(FocalLoss(), logits, labels, weight, avg_factor=7.0)[1]
    torch.testing.assert_close(ours[background], focal[background])
    paper = value_and_grad(ParameterFreeLoss(negative='mean'), logits, labels, weight)[1]
    assert paper[background].abs().max() < 1e-2 * ours[background].abs().max()


def test_dense_form_weighs_every_present_class_alike():
    """One class with 1 positive, one with 20: each class's summed positive gradient is the
    same, alpha / classes present * (1 - p) at equal p, however many anchors it has."""
    logits = torch.zeros(21, 2, dtype=torch.float64)
    labels = torch.tensor([0] + [1] * 20)
    grad = value_and_grad(ParameterFreeLoss(), logits, labels)[1]
    rare, frequent = grad[0, 0], grad[1:, 1].sum()
    torch.testing.assert_close(rare, frequent, rtol=1e-5, atol=0)  # eps in q+ aside
    assert rare.item() == pytest.approx(-0.25 / 2 * 0.5, rel=1e-5)


def test_dense_form_labels_equal_one_hot_targets():
    logits, labels, weight = _batch(60, 4, seed=9)
    one_hot = torch.nn.functional.one_hot(labels, 5)[:, :4].double()
    loss = ParameterFreeLoss()
    torch.testing.assert_close(value_and_grad(loss, logits, labels, weight, avg_factor=5.0),
                               value_and_grad(loss, logits, one_hot, weight, avg_factor=5.0))


def test_dense_heatmap_form():
    """PF's positive term over the peaks plus GaussianFocalLoss's negatives over the peaks'
    count: with the positive term taken away (one peak at p = 1, -log q+ = 0) it is exactly
    GaussianFocalLoss's negative loss."""
    from mmdet.models.losses import GaussianFocalLoss
    prob, heat = _heatmap(2, 3, 4, 4, seed=8)
    loss = GaussianParameterFreeLoss()
    peaks = heat.eq(1)
    prob = torch.where(peaks, torch.ones_like(prob), prob)
    num_peaks = int(peaks.sum())
    ref = GaussianFocalLoss(pos_weight=0.0)(prob, heat, avg_factor=num_peaks)
    torch.testing.assert_close(loss(prob, heat, avg_factor=num_peaks), ref)
    with pytest.raises(ValueError, match="negative='mean'"):
        GaussianParameterFreeLoss(hard_majority=True)
    with pytest.raises(ValueError, match="negative='mean'"):
        ParameterFreeLoss(use_sigmoid=False)
    with pytest.raises(ValueError, match='negative'):
        ParameterFreeLoss(negative='sum')


@pytest.mark.parametrize('make, kwargs', [
    (ParameterFreeLoss, dict(gamma=2.0)),
    (ParameterFreeLoss, dict(alpha=0.5)),
    (GaussianParameterFreeLoss, dict(focal_power=2.0)),
])
def test_focal_parameters_are_refused_with_the_paper_form(make, kwargs):
    # They only shape the focal negatives; accepting and ignoring them would hide a typo'd
    # config. Defaults (None) give the paper form, whose heatmap gamma is its own weighting.
    with pytest.raises(ValueError, match=f"{next(iter(kwargs))} parametrise .*negative='focal'"):
        make(negative='mean', **kwargs)
    assert make(negative='mean').negative == 'mean'
    dense = make(**kwargs)
    assert getattr(dense, next(iter(kwargs))) == next(iter(kwargs.values()))
    assert GaussianParameterFreeLoss(negative='mean', gamma=2.0).gamma == 2.0
    assert (ParameterFreeLoss().gamma, ParameterFreeLoss().alpha) == (2.0, 0.25)
    assert GaussianParameterFreeLoss().focal_power == 2.0
