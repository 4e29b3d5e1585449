"""ClassBalancedFocalLoss and GaussianClassBalancedFocalLoss, plus the reliability checks
of every count-weighted loss (the Adaptive Focal losses are included there, in eval mode so
their progress counter stays put)."""
import math

import pytest
import torch
from mmdet.models.losses import FocalLoss, GaussianFocalLoss

from imbfocal.losses import (AdaptiveFocalLoss, ClassBalancedFocalLoss,
                             GaussianAdaptiveFocalLoss, GaussianClassBalancedFocalLoss,
                             class_balanced_weights)
from loss_testing import value_and_grad

C = 4
EQUAL = [10] * C
LONG_TAIL = [1000, 100, 10, 0]

SIGMOID_LOSSES = {
    'cb': lambda: ClassBalancedFocalLoss(class_counts=LONG_TAIL, beta=0.99),
    'afl': lambda: AdaptiveFocalLoss(class_counts=LONG_TAIL, beta=0.99, lam0=1.0).eval(),
}
GAUSSIAN_LOSSES = {
    'gcb': lambda: GaussianClassBalancedFocalLoss(class_counts=LONG_TAIL, beta=0.99),
    'gafl': lambda: GaussianAdaptiveFocalLoss(class_counts=LONG_TAIL, beta=0.99).eval(),
}
pytestmark = pytest.mark.filterwarnings('ignore:.*counted as 1:UserWarning')


def _logits(n=6, c=C, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, c, generator=g, dtype=dtype) * 3).requires_grad_()


def _labels(n=6, c=C, seed=0):
    return torch.randint(0, c + 1, (n, ), generator=torch.Generator().manual_seed(seed))


def _heatmap(b=2, c=C, h=5, w=5, dtype=torch.float32, seed=0):
    """Probabilities and a Gaussian target with a peak (t == 1) in every class channel."""
    g = torch.Generator().manual_seed(seed)
    pred = torch.rand(b, c, h, w, generator=g, dtype=dtype).clamp(0.02, 0.98)
    target = torch.rand(b, c, h, w, generator=g, dtype=dtype) * 0.9
    target[0, :, 1, 2] = 1
    target[-1, 0, -1, -1] = 1
    return pred.requires_grad_(), target


# --- class weights ------------------------------------------------------------------------------


def test_class_balanced_weights_hand_computed():
    # beta = 0.5, n = [1, 1, 3]: E = (1 - 0.5^n) / 0.5 = [1, 1, 1.75]; 1/E = [1, 1, 4/7];
    # mean(1/E) = (2 + 4/7) / 3 = 6/7, so w = (1/E) / (6/7) = [7/6, 7/6, 2/3] (mean 1).
    w = class_balanced_weights(torch.tensor([1, 1, 3]), beta=0.5)
    torch.testing.assert_close(w, torch.tensor([7 / 6, 7 / 6, 2 / 3], dtype=torch.float64))


def test_class_balanced_weights_limits():
    counts = torch.tensor([0, 1, 50, 5000])
    # beta = 0: E_c = 1 for every n_c >= 1, so w_c = 1.
    assert torch.equal(class_balanced_weights(counts, 0.0), torch.ones(4, dtype=torch.float64))
    # n_c = 0 counts as 1: E = 1 for both the 0 and the 1, hence the same weight.
    w = class_balanced_weights(counts, 0.9999)
    assert w[0] == w[1] and torch.all(w[1:-1] > w[2:])
    # beta -> 1: E_c -> n_c, w_c proportional to 1/n_c; 1 - 1e-12 keeps the expm1 form exact:
    # w = (1/n) / mean(1/n) for n = [1, 1, 50, 5000].
    inv = torch.tensor([1, 1, 1 / 50, 1 / 5000], dtype=torch.float64)
    torch.testing.assert_close(class_balanced_weights(counts, 1 - 1e-12), inv / inv.mean())
    with pytest.raises(ValueError, match='beta'):
        class_balanced_weights(counts, 1.0)


# --- equal counts is MMDetection's FocalLoss -----------------------------------------------------


@pytest.mark.parametrize('reduction', ['none', 'mean', 'sum'])
@pytest.mark.parametrize('use_weight', [False, True])
@pytest.mark.parametrize('avg_factor', [None, 3.5])
@pytest.mark.parametrize('override', [None, 'none', 'sum', 'mean'])
def test_equal_counts_is_mmdet_focal_loss(reduction, use_weight, avg_factor, override):
    ours = ClassBalancedFocalLoss(class_counts=EQUAL, reduction=reduction, loss_weight=1.7)
    ref = FocalLoss(use_sigmoid=True, reduction=reduction, loss_weight=1.7)
    pred, labels = _logits(n=7), _labels(n=7)
    weight = torch.tensor([1., 0., 2., 1., .5, 1., 0.]) if use_weight else None
    kwargs = dict(weight=weight, avg_factor=avg_factor, reduction_override=override)
    if avg_factor is not None and (override or reduction) == 'sum':
        for fn in (ours, ref):  # MMDetection refuses avg_factor with sum; so do we
            with pytest.raises(ValueError, match='avg_factor'):
                fn(pred, labels, **kwargs)
        return
    loss, grad = value_and_grad(ours, pred, labels, **kwargs)
    ref_loss, ref_grad = value_and_grad(ref, pred, labels, **kwargs)
    torch.testing.assert_close(loss, ref_loss)
    torch.testing.assert_close(grad, ref_grad)


def test_equal_counts_is_mmdet_focal_loss_one_hot_and_flat_weight():
    pred, labels = _logits(n=5), torch.tensor([0, 4, 2, 3, 4])
    one_hot = torch.nn.functional.one_hot(labels, C + 1)[:, :C].float()
    flat_weight = torch.rand(5 * C, generator=torch.Generator().manual_seed(1))  # FSAF form
    ours = ClassBalancedFocalLoss(class_counts=EQUAL)
    ref = FocalLoss()
    for target in (labels, one_hot):
        for weight in (None, flat_weight):
            torch.testing.assert_close(ours(pred, target, weight), ref(pred, one_hot, weight))


# --- hand-computed example and ratios -------------------------------------------------------------


def test_hand_computed_two_anchors_three_classes():
    # x = 0 everywhere: p = 0.5, BCE = ln 2, (1 - p_t)^2 = 1/4 for every element.
    # positive element: alpha_t = 0.25 -> 0.25 * 0.25 * ln2 = ln2 / 16
    # negative element: alpha_t = 0.75 -> 0.75 * 0.25 * ln2 = 3 ln2 / 16
    # one positive + two negatives per anchor: FL_i = 7 ln2 / 16.
    # counts [1, 1, 3], beta 0.5 -> w = [7/6, 7/6, 2/3] (see test_class_balanced_weights_...).
    # anchor 0 (class 0): 7/6 * 7 ln2/16 = 49 ln2/96; anchor 1 (class 2): 2/3 * 7 ln2/16
    # = 28 ln2/96; sum = 77 ln2/96, mean over the 6 elements = 77 ln2/576.
    loss_fn = ClassBalancedFocalLoss(class_counts=[1, 1, 3], beta=0.5)
    pred, labels = torch.zeros(2, 3), torch.tensor([0, 2])
    ln2 = math.log(2)
    per_element = loss_fn(pred, labels, reduction_override='none')
    expected = torch.tensor([[1, 3, 3], [3, 3, 1]]) * ln2 / 16 * torch.tensor([[7 / 6], [2 / 3]])
    torch.testing.assert_close(per_element, expected)
    torch.testing.assert_close(loss_fn(pred, labels), torch.tensor(77 * ln2 / 576))
    torch.testing.assert_close(loss_fn(pred, labels, reduction_override='sum'),
                               torch.tensor(77 * ln2 / 96))


@pytest.mark.parametrize('beta', [0.0, 1e-12])
def test_small_beta_is_unweighted_focal(beta):
    # beta -> 0: E_c = 1 - beta^n_c -> 1 for every class, so w_c = 1 despite the long tail.
    pred, labels = _logits(), _labels()
    ours = ClassBalancedFocalLoss(class_counts=[5000, 1, 20, 3], beta=beta)
    torch.testing.assert_close(ours(pred, labels), FocalLoss()(pred, labels))


def test_rare_over_frequent_ratio_and_bg_weight():
    # A row of equal logits has the same focal loss whichever class is the positive, so the
    # ratio of the two class-balanced losses is exactly w_rare / w_freq.
    counts = [1000, 100, 10, 1]
    w = class_balanced_weights(torch.tensor(counts), 0.999)
    loss_fn = ClassBalancedFocalLoss(class_counts=counts, reduction='sum')
    row = torch.full((1, C), 0.3)
    rare, freq = loss_fn(row, torch.tensor([3])), loss_fn(row, torch.tensor([0]))
    torch.testing.assert_close(rare / freq, (w[3] / w[0]).float())
    # background anchors are scaled by bg_weight: 0.5 here, relative to bg_weight=1 (= FL).
    bg = torch.tensor([C])
    half = ClassBalancedFocalLoss(class_counts=counts, bg_weight=0.5, reduction='sum')
    torch.testing.assert_close(half(row, bg), 0.5 * FocalLoss(reduction='sum')(row, bg))


def test_soft_targets_take_class_from_argmax():
    # A soft row with a positive entry belongs to its argmax class; an all-zero row is
    # background. So the per-element loss is FL(x, t) times w_{argmax} (or bg_weight = 1).
    counts = [1000, 100, 10, 1]
    w = class_balanced_weights(torch.tensor(counts), 0.999).float()
    pred = _logits(n=3).detach()
    soft = torch.tensor([[0., 0.3, 0.8, 0.], [0.6, 0., 0., 0.], [0., 0., 0., 0.]])
    loss = ClassBalancedFocalLoss(class_counts=counts, reduction='none')(pred, soft)
    focal = FocalLoss(reduction='none')(pred, soft)
    torch.testing.assert_close(loss, focal * torch.stack([w[2], w[0], torch.tensor(1.)])[:, None])


# --- Gaussian form -------------------------------------------------------------------------------


@pytest.mark.parametrize('reduction', ['none', 'mean', 'sum'])
@pytest.mark.parametrize('avg_factor', [None, 3.0])
def test_gaussian_equal_counts_is_mmdet_gaussian_focal_loss(reduction, avg_factor):
    if avg_factor is not None and reduction == 'sum':
        return
    pred, target = _heatmap()
    weight = torch.rand(pred.shape, generator=torch.Generator().manual_seed(2))
    kwargs = dict(weight=weight, avg_factor=avg_factor)
    ours = GaussianClassBalancedFocalLoss(class_counts=EQUAL, reduction=reduction, loss_weight=2.)
    ref = GaussianFocalLoss(reduction=reduction, loss_weight=2.)
    loss, grad = value_and_grad(ours, pred, target, **kwargs)
    ref_loss, ref_grad = value_and_grad(ref, pred, target, **kwargs)
    torch.testing.assert_close(loss, ref_loss)
    torch.testing.assert_close(grad, ref_grad)


def test_gaussian_pos_inds_form_equal_counts_and_weighting():
    # CenterNetUpdateHead's form: (N, C) probabilities, positives given by index and label.
    g = torch.Generator().manual_seed(5)
    pred = torch.rand(12, C, generator=g).clamp(0.02, 0.98)
    target = torch.rand(12, C, generator=g) * 0.9
    pos_inds, pos_labels = torch.tensor([1, 5, 7]), torch.tensor([0, 3, 3])
    args = (pred, target, pos_inds, pos_labels)
    ref = GaussianFocalLoss()(*args, avg_factor=3)
    torch.testing.assert_close(
        GaussianClassBalancedFocalLoss(class_counts=EQUAL)(*args, avg_factor=3), ref)
    # Only the positive terms are class-weighted: the difference to the reference is the
    # positive loss times (w_label - 1), summed and divided by avg_factor = 3.
    w = class_balanced_weights(torch.tensor(LONG_TAIL), 0.99).float()
    pos_p = pred[pos_inds, pos_labels]
    pos = -(pos_p + 1e-12).log() * (1 - pos_p).pow(2)
    weighted = GaussianClassBalancedFocalLoss(class_counts=LONG_TAIL, beta=0.99)
    torch.testing.assert_close(weighted(*args, avg_factor=3),
                               ref + (pos * (w[pos_labels] - 1)).sum() / 3)
    with pytest.raises(ValueError, match='pos_labels'):
        weighted(pred, target, pos_inds)


def test_gaussian_positive_terms_scaled_by_class_weight():
    # Zero out the negatives (neg_weight = 0): the loss of channel c is w_c times the reference.
    pred, target = _heatmap()
    w = class_balanced_weights(torch.tensor(LONG_TAIL), 0.99).float()
    ours = GaussianClassBalancedFocalLoss(class_counts=LONG_TAIL, beta=0.99, neg_weight=0.,
                                          reduction='none')
    ref = GaussianFocalLoss(neg_weight=0., reduction='none')
    torch.testing.assert_close(ours(pred, target), ref(pred, target) * w.view(1, C, 1, 1))


# --- contract ------------------------------------------------------------------------------------


def test_contract_errors():
    with pytest.raises(ValueError, match='use_sigmoid'):
        ClassBalancedFocalLoss(use_sigmoid=False, class_counts=EQUAL)
    with pytest.raises(ValueError, match='reduction'):
        ClassBalancedFocalLoss(class_counts=EQUAL, reduction='avg')
    loss_fn = ClassBalancedFocalLoss(class_counts=EQUAL)
    assert loss_fn.use_sigmoid is True
    with pytest.raises(ValueError, match='reduction_override'):
        loss_fn(_logits(), _labels(), reduction_override='avg')
    with pytest.raises(ValueError, match=r'\(N, C\)'):
        loss_fn(torch.zeros(2, C, 3), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match='labels of shape'):
        loss_fn(_logits(n=6), _labels(n=5))
    with pytest.raises(ValueError, match='weight of shape'):
        loss_fn(_logits(n=6), _labels(n=6), weight=torch.ones(5))
    gaussian = GaussianClassBalancedFocalLoss(class_counts=EQUAL)
    with pytest.raises(ValueError, match='same shape'):
        gaussian(torch.rand(1, C, 2, 2), torch.rand(1, C, 2, 3))


def test_counts_buffer_follows_module():
    loss_fn = ClassBalancedFocalLoss(class_counts=LONG_TAIL).half()
    assert loss_fn.class_counts.dtype == torch.long  # .half() leaves integer buffers alone
    assert torch.equal(loss_fn.state_dict()['class_counts'], torch.tensor(LONG_TAIL))


# --- reliability, every count-weighted loss ---------------------------------------


@pytest.mark.parametrize('name', SIGMOID_LOSSES)
@pytest.mark.parametrize('soft', [False, True])
def test_gradcheck_sigmoid(name, soft):
    loss_fn = SIGMOID_LOSSES[name]()
    pred = _logits(n=5, dtype=torch.float64)
    target = _labels(n=5)
    if soft:
        target = torch.rand(5, C, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    weight = torch.rand(5, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    assert torch.autograd.gradcheck(lambda x: loss_fn(x, target, weight, avg_factor=2.0), pred)


@pytest.mark.parametrize('name', GAUSSIAN_LOSSES)
def test_gradcheck_gaussian(name):
    loss_fn = GAUSSIAN_LOSSES[name]()
    pred, target = _heatmap(b=1, h=3, w=3, dtype=torch.float64)
    pred.data.clamp_(0.05, 0.95)
    assert torch.autograd.gradcheck(lambda p: loss_fn(p, target, avg_factor=2.0), pred)


@pytest.mark.parametrize('name', SIGMOID_LOSSES)
def test_extreme_logits_finite(name):
    loss_fn = SIGMOID_LOSSES[name]()
    pred = torch.tensor([[-100., 100., 0., 50.], [100., -100., -50., 0.]]).repeat(3, 1)
    pred.requires_grad_()
    labels = torch.tensor([0, 1, 4, 2, 3, 4])
    loss = loss_fn(pred, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()


@pytest.mark.parametrize('name', GAUSSIAN_LOSSES)
def test_gaussian_extreme_logits_finite(name):
    loss_fn = GAUSSIAN_LOSSES[name]()
    logits = torch.tensor([-100., 100.]).repeat(C * 8)[:C * 16].view(1, C, 4, 4).requires_grad_()
    _, target = _heatmap(b=1, h=4, w=4)
    loss = loss_fn(logits.sigmoid(), target, avg_factor=2)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize('name', SIGMOID_LOSSES)
def test_empty_no_positive_and_all_ignored(name):
    loss_fn = SIGMOID_LOSSES[name]()
    # 0 anchors: MMDetection's FocalLoss gives 0 with avg_factor (sum / (0 + eps)) and with
    # 'sum'; without avg_factor it gives mean() of nothing = NaN, where these losses give 0.
    empty = torch.zeros(0, C, requires_grad=True)
    no_labels = torch.zeros(0, dtype=torch.long)
    ref = FocalLoss()(empty, no_labels, avg_factor=0)
    for kwargs in (dict(avg_factor=0), dict(), dict(reduction_override='sum')):
        loss = loss_fn(empty, no_labels, **kwargs)
        loss.backward()
        assert loss.item() == 0 == ref.item()
        assert loss.dtype == torch.float32
    # no positives: only background anchors, a finite positive loss.
    pred = _logits()
    loss = loss_fn(pred, torch.full((6, ), C), avg_factor=1)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0 and torch.isfinite(pred.grad).all()
    # all ignored: weight 0 and avg_factor 0 -> 0 loss and 0 gradient.
    pred = _logits()
    loss = loss_fn(pred, _labels(), torch.zeros(6), avg_factor=0)
    loss.backward()
    assert loss.item() == 0 and torch.equal(pred.grad, torch.zeros_like(pred))


@pytest.mark.parametrize('name', GAUSSIAN_LOSSES)
def test_gaussian_no_peaks_and_empty(name):
    loss_fn = GAUSSIAN_LOSSES[name]()
    pred, target = _heatmap()
    target = target.clamp(max=0.9)  # no peak anywhere
    loss = loss_fn(pred, target, avg_factor=1)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    empty = torch.zeros(0, C, 4, 4, requires_grad=True)
    loss = loss_fn(empty, torch.zeros(0, C, 4, 4), avg_factor=0)
    loss.backward()
    assert loss.item() == 0


@pytest.mark.parametrize('name', list(SIGMOID_LOSSES) + list(GAUSSIAN_LOSSES))
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_autocast_half_precision(name, dtype):
    if name in SIGMOID_LOSSES:
        loss_fn = SIGMOID_LOSSES[name]()
        pred = _logits(dtype=dtype)
        pred.data[0] = torch.tensor([-100., 100., 60., -60.], dtype=dtype)
        args = (_labels(), )
    else:
        loss_fn = GAUSSIAN_LOSSES[name]()
        pred, target = _heatmap(dtype=dtype)
        args = (target, )
    with torch.autocast('cpu', dtype=dtype):
        loss = loss_fn(pred, *args, avg_factor=3)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert pred.grad.dtype == dtype and torch.isfinite(pred.grad).all()
