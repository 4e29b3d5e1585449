"""ClassBalancedFocalLoss and GaussianClassBalancedFocalLoss: the class weights, hand-computed
values and the properties of the weighting (MMDetection's contract: test_contract.py)."""
import math

import pytest
import torch
from mmdet.models.losses import FocalLoss, GaussianFocalLoss

from imbfocal.losses import (
    ClassBalancedFocalLoss,
    GaussianClassBalancedFocalLoss,
    class_balanced_weights,
)

C = 4
EQUAL = [10] * C
LONG_TAIL = [1000, 100, 10, 0]

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


# --- hand-computed example and ratios -------------------------------------------------------------


def test_hand_computed_two_anchors_three_classes():
    # x = 0 everywhere: p = 0.5, BCE = ln 2, (1 - p_t)^2 = 1/4 for every element.
    # positive element: alpha_t = 0.25 -> 0.25 * 0.25 * ln2 = ln2 / 16
    # negative element: alpha_t = 0.75 -> 0.75 * 0.25 * ln2 = 3 ln2 / 16
    # one positive + two negatives per anchor: FL_i = 7 ln2 / 16.
    # counts [1, 1, 3], beta 0.5 -> w = [7/6, 7/6, 2/3] (see test_class_balanced_weights_...).
    # anchor 0 (class 0): 7/6 * 7 ln2/16 = 49 ln2/96; anchor 1 (class 2): 2/3 * 7 ln2/16
    # = 28 ln2/96; sum = 77 ln2/96, mean over the 6 elements = 77 ln2/576.
    loss_fn = ClassBalancedFocalLoss(class_counts=[1, 1, 3], beta=0.5, weighting='row',
                                     max_weight=None)
    pred, labels = torch.zeros(2, 3), torch.tensor([0, 2])
    ln2 = math.log(2)
    per_element = loss_fn(pred, labels, reduction_override='none')
    expected = torch.tensor([[1, 3, 3], [3, 3, 1]]) * ln2 / 16 * torch.tensor([[7 / 6], [2 / 3]])
    torch.testing.assert_close(per_element, expected)
    torch.testing.assert_close(loss_fn(pred, labels), torch.tensor(77 * ln2 / 576))
    torch.testing.assert_close(loss_fn(pred, labels, reduction_override='sum'),
                               torch.tensor(77 * ln2 / 96))


@pytest.mark.parametrize('weighting', ['positive', 'column'])
def test_hand_computed_detection_forms(weighting):
    # x = 0: a positive element is ln2 / 16, a negative one 3 ln2 / 16 (see above).
    # counts [1, 1, 3], beta 0.5: 1/E = [1, 1, 4/7]; mean 1 over the 5 instances: the
    # weighted sum 1 + 1 + 3 * 4/7 = 26/7 must be 5, so w = (1/E) * 35/26 = [35/26, 35/26,
    # 10/13]. 'positive' weighs the ground-truth element of each anchor only; 'column' every
    # element of class c by w_c, negatives of class c included.
    loss_fn = ClassBalancedFocalLoss(class_counts=[1, 1, 3], beta=0.5, weighting=weighting,
                                     max_weight=None, reduction='none')
    pred, labels = torch.zeros(2, 3), torch.tensor([0, 2])
    w = torch.tensor([35 / 26, 35 / 26, 10 / 13])
    focal = torch.tensor([[1., 3, 3], [3, 3, 1]]) * math.log(2) / 16
    positive = torch.tensor([[1., 0, 0], [0, 0, 1]])
    factor = positive * w + (1 - positive) if weighting == 'positive' else w.expand(2, 3)
    torch.testing.assert_close(loss_fn(pred, labels), focal * factor)
    # clipping: max_weight 1.2 caps the two rare classes' 35/26 = 1.35
    clipped = ClassBalancedFocalLoss(class_counts=[1, 1, 3], beta=0.5, weighting=weighting,
                                     max_weight=1.2)
    torch.testing.assert_close(clipped.class_weights(3).float(), torch.tensor([1.2, 1.2, 10 / 13]))


def test_detection_forms_keep_the_positive_mass_of_focal_loss():
    """Weights of mean 1 over the instances: sum_c n_c w_c = sum_c n_c, so a batch with the
    training distribution has focal loss's positive mass, not the 0.05 that classes-mean
    weights leave the frequent classes (the 'row' form)."""
    counts = torch.tensor([574, 300, 40, 5, 2])
    w = class_balanced_weights(counts, 0.999, 'instances')
    assert (counts * w).sum() == pytest.approx(counts.sum().item())
    assert w[0] > 0.3 and class_balanced_weights(counts, 0.999)[0] < 0.2
    assert class_balanced_weights(counts, 0.999, 'instances', 10.0).max() == 10.0
    with pytest.raises(ValueError, match='mean_over'):
        class_balanced_weights(counts, 0.999, 'anchors')
    with pytest.raises(ValueError, match='weighting'):
        ClassBalancedFocalLoss(class_counts=[1, 2], weighting='diagonal')
    with pytest.raises(ValueError, match='bg_weight'):
        ClassBalancedFocalLoss(class_counts=[1, 2], bg_weight=0.5)
    with pytest.raises(ValueError, match='max_weight'):
        ClassBalancedFocalLoss(class_counts=[1, 2], max_weight=0.0)


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
    loss_fn = ClassBalancedFocalLoss(class_counts=counts, beta=0.999, weighting='row',
                                     max_weight=None, reduction='sum')
    row = torch.full((1, C), 0.3)
    rare, freq = loss_fn(row, torch.tensor([3])), loss_fn(row, torch.tensor([0]))
    torch.testing.assert_close(rare / freq, (w[3] / w[0]).float())
    # background anchors are scaled by bg_weight: 0.5 here, relative to bg_weight=1 (= FL).
    bg = torch.tensor([C])
    half = ClassBalancedFocalLoss(class_counts=counts, weighting='row', bg_weight=0.5,
                                  max_weight=None, reduction='sum')
    torch.testing.assert_close(half(row, bg), 0.5 * FocalLoss(reduction='sum')(row, bg))


def test_soft_targets_take_class_from_argmax():
    # A soft row with a positive entry belongs to its argmax class; an all-zero row is
    # background. So the per-element loss is FL(x, t) times w_{argmax} (or bg_weight = 1).
    counts = [1000, 100, 10, 1]
    w = class_balanced_weights(torch.tensor(counts), 0.999).float()
    pred = _logits(n=3).detach()
    soft = torch.tensor([[0., 0.3, 0.8, 0.], [0.6, 0., 0., 0.], [0., 0., 0., 0.]])
    loss = ClassBalancedFocalLoss(class_counts=counts, beta=0.999, weighting='row',
                                  max_weight=None, reduction='none')(pred, soft)
    focal = FocalLoss(reduction='none')(pred, soft)
    torch.testing.assert_close(loss, focal * torch.stack([w[2], w[0], torch.tensor(1.)])[:, None])


# --- Gaussian form -------------------------------------------------------------------------------


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
    w = class_balanced_weights(torch.tensor(LONG_TAIL), 0.99, 'instances', 10.0).float()
    pos_p = pred[pos_inds, pos_labels]
    pos = -(pos_p + 1e-12).log() * (1 - pos_p).pow(2)
    weighted = GaussianClassBalancedFocalLoss(class_counts=LONG_TAIL, max_weight=10.0)
    torch.testing.assert_close(weighted(*args, avg_factor=3),
                               ref + (pos * (w[pos_labels] - 1)).sum() / 3)
    with pytest.raises(ValueError, match='pos_labels'):
        weighted(pred, target, pos_inds)


def test_gaussian_positive_terms_scaled_by_class_weight():
    # Zero out the negatives (neg_weight = 0): the loss of channel c is w_c times the reference.
    pred, target = _heatmap()
    w = class_balanced_weights(torch.tensor(LONG_TAIL), 0.99, 'instances', 10.0).float()
    ours = GaussianClassBalancedFocalLoss(class_counts=LONG_TAIL, max_weight=10.0,
                                          neg_weight=0., reduction='none')
    ref = GaussianFocalLoss(neg_weight=0., reduction='none')
    torch.testing.assert_close(ours(pred, target), ref(pred, target) * w.view(1, C, 1, 1))


def test_counts_buffer_follows_module():
    loss_fn = ClassBalancedFocalLoss(class_counts=LONG_TAIL).half()
    assert loss_fn.class_counts.dtype == torch.long  # .half() leaves integer buffers alone
    assert torch.equal(loss_fn.state_dict()['class_counts'], torch.tensor(LONG_TAIL))



def test_beta_zero_needs_no_counts():
    """At beta = 0, E_c = (1 - 0^n_c) / 1 = 1 for every counted class: every weight is 1
    whatever the counts, so a module without counts is focal loss (and Gaussian focal loss),
    while beta > 0 still asks for counts."""
    pred, labels = _logits(), _labels()
    torch.testing.assert_close(ClassBalancedFocalLoss(beta=0.0)(pred, labels),
                               FocalLoss()(pred, labels))
    heat_pred, heat_target = _heatmap()
    torch.testing.assert_close(GaussianClassBalancedFocalLoss(beta=0.0)(heat_pred, heat_target),
                               GaussianFocalLoss()(heat_pred, heat_target))
    with pytest.raises(RuntimeError, match='no class counts'):
        ClassBalancedFocalLoss()(pred, labels)
