"""Parameter-Free loss (PF-loss) for sigmoid, softmax and heatmap (CenterNet) heads.

Du, Zhou, Liu, Vong and Wang, "Parameter-Free Loss for Class-Imbalanced Deep Learning in Image
Classification", IEEE TNNLS 2021, doi:10.1109/TNNLS.2021.3110885.

The paper replaces each sample's probability in cross-entropy by the mean probability of its
class in the mini-batch, eq. (9)-(10)::

    PF = -(1/M) * sum_j log q_j,        q_j = (sum_{i in class j} p_i + eps) / (N_j + eps)

so every class weighs the same whatever its size, and an absent class (``N_j = 0``) has
``q_j = 1`` and contributes 0. Its binary form, eq. (13), has one mean for the positives and one
for the negatives. For the one-vs-all (sigmoid) heads of detectors this module applies eq. (13)
to every class::

    q+_c = (sum_{i in P_c} p_ic + eps) / (|P_c| + eps)
    q-_c = (sum_{i in N_c} (1 - p_ic) + eps) / (|N_c| + eps)
    PF   = (1/C) * sum_c [-log q+_c - log q-_c]

over the valid anchors ``V`` of the whole mini-batch (all images, all pyramid levels, passed in
one call), ``P_c`` the anchors labelled ``c`` and ``N_c = V \\ P_c``. For ``C = 1`` this is eq.
(13) exactly, which is twice eq. (9) with ``M = 2``: eq. (13) has no ``1/M``.

The four per-class sums are one reduction over the anchors and, under
``torch.distributed``, are summed over the processes (autograd-aware), so every process
computes the statistic of the global batch. From integer labels with per-anchor weights they
come from the fast path (:mod:`.fast.parameter_free`); other inputs take the dense autograd
path, which the fast one is tested against.

Definitions for detection (the paper is a classification paper):

* ``weight`` (non-negative, per anchor ``(N,)`` or per element): ``q = sum(w * prob) /
  sum(w)``, weighted means; 0 excludes an anchor (MMDetection's ``label_weights``).
* Soft / one-hot targets ``t`` are class memberships: positives weighted by ``t``,
  negatives by ``1 - t``; integer labels (background ``= C``) give the one-hot case.
* ``reduction``: ``'none'`` returns the per-class terms ``(C,)``, ``'mean'`` (default) their
  mean (the PF value; absent classes count with their 0), ``'sum'`` their sum.
* ``avg_factor`` never rescales PF, which normalises itself: accepted with ``'mean'`` (heads
  pass it), no effect with ``'none'``, ``ValueError`` with ``'sum'`` (as MMDetection).
* ``hard_majority=True`` is the paper's PFH (sec. III-E): a majority sample's probability
  above 0.5 counts as the constant 1 (no gradient): the negatives of a class for the
  one-vs-all form, the background column for the softmax form, non-peak pixels for heatmaps.
* ``eps`` (default 1e-6) is the paper's small delta; the smallest ``q`` is
  ``eps / (count + eps)``, so every ``log`` is finite.
"""
from typing import Optional, Tuple, Union

import torch
from mmdet.registry import MODELS
from torch import Tensor

from ..registry import register
from .contract import (
    AvgFactor,
    ClassificationLoss,
    HeatmapLoss,
    as_float32,
    broadcast_anchor_weight,
    check_avg_factor,
    check_fraction,
    check_gamma,
    check_label_shape,
    check_non_negative,
    check_positions,
    check_positive,
    check_reduction,
    check_target_values,
    labels_to_targets,
    no_autocast,
    reduction_divisor,
)
from .distributed import all_reduce_sum, world_size
from .fast import dispatch
from .fast.parameter_free import label_sums
from .focal_family import FocalTerms, focal_family_loss


def _hard(prob: Tensor) -> Tensor:
    """PFH: a majority probability above 0.5 becomes the constant 1 (no gradient there)."""
    return torch.where(prob > 0.5, torch.ones_like(prob), prob)


def _neg_log_mean(num: Tensor, count: Tensor, eps: float) -> Tensor:
    """``-log((num + eps) / (count + eps))``: 0 for an empty set, finite always."""
    return (count + eps).log() - (num + eps).log()


def _check_labels(labels: Tensor, high: int, valid: Optional[Tensor]) -> None:
    """Raise if a label of a valid sample is outside ``[0, high]``."""
    if valid is not None:
        labels = labels[valid]
    if labels.numel() and (labels.min() < 0 or labels.max() > high):
        raise ValueError(f'labels must lie in [0, {high}] (got values in '
                         f'[{int(labels.min())}, {int(labels.max())}])')


def _anchor_weight(weight: Optional[Tensor], x: Tensor) -> Optional[Tensor]:
    """Weight ``(N,)``, ``(N, 1)``, ``(N * C,)`` or ``(N, C)`` in ``x``'s dtype, broadcastable
    to ``x (N, C)``."""
    return None if weight is None else broadcast_anchor_weight(as_float32(weight).to(x.dtype), x)


def _peaks(p: Tensor, t: Tensor, pos_inds: Optional[Tensor],
           pos_labels: Optional[Tensor]) -> Tensor:
    """The heatmap's peaks as a 0/1 mask: ``t == 1``, or the given ``(pos_inds, pos_labels)``."""
    if pos_inds is None:
        return t.eq(1).to(p.dtype)
    peak = torch.zeros_like(p)
    peak[pos_inds, pos_labels] = 1
    return peak


def _present_class_terms(pos_num: Tensor, pos_cnt: Tensor, eps: float,
                         scale: float) -> Tuple[Tensor, Tensor]:
    """``-log q+_c`` summed over processes, 0 for the classes without positives, scaled so
    that their mean over all ``C`` classes is ``scale`` times the mean over the present ones."""
    pos_num, pos_cnt = all_reduce_sum(torch.stack([pos_num, pos_cnt]))
    present = pos_cnt > 0
    terms = torch.where(present, _neg_log_mean(pos_num, pos_cnt, eps), 0.0)
    return terms * (scale * pos_cnt.numel() / present.sum().clamp(min=1)), pos_cnt


def _reduce_terms(terms: Tensor, reduction: str, avg_factor: AvgFactor) -> Tensor:
    """Reduce the per-class terms; ``avg_factor`` never rescales (see the module docstring)."""
    if check_reduction(reduction) == 'none':
        return terms
    check_avg_factor(reduction, avg_factor)
    if reduction == 'sum':
        return terms.sum()
    return terms.mean() if terms.numel() else terms.sum()


def _terms_from_sums(pos_num: Tensor, pos_cnt: Tensor, neg_num: Tensor, neg_cnt: Tensor,
                     eps: float) -> Tensor:
    """Per-class ``-log q+ - log q-`` from the four per-class sums, summed over processes.

    The sums are stacked into one tensor so that DDP needs a single all-reduce.
    """
    stats = all_reduce_sum(torch.stack([pos_num, pos_cnt, neg_num, neg_cnt]))
    pos_num, pos_cnt, neg_num, neg_cnt = stats
    return _neg_log_mean(pos_num, pos_cnt, eps) + _neg_log_mean(neg_num, neg_cnt, eps)


def _one_vs_all_terms(pos_w: Tensor, neg_w: Tensor, pos_prob: Tensor, neg_prob: Tensor,
                      dims, eps: float) -> Tensor:
    """Per-class terms from dense membership weights and probabilities (reduced over dims)."""
    return _terms_from_sums((pos_w * pos_prob).sum(dims), pos_w.sum(dims),
                            (neg_w * neg_prob).sum(dims), neg_w.sum(dims), eps)


def _sigmoid_terms(pred: Tensor, target: Tensor, weight: Optional[Tensor],
                   hard_majority: bool, eps: float) -> Tensor:
    """Per-class one-vs-all terms ``(C,)``; autocast must be off."""
    if pred.dim() != 2:
        raise ValueError(f'pred must be logits of shape (N, C), got {tuple(pred.shape)}')
    check_label_shape(pred, target)
    x = as_float32(pred)
    w = _anchor_weight(weight, x)
    check_target_values(x, target, w)
    if (not target.is_floating_point() and (w is None or w.size(1) == 1)
            and dispatch.get_impl() != 'reference' and not (w is not None and w.requires_grad)):
        on_kernel = dispatch.use_kernel(x, 'pf')
        return _terms_from_sums(*label_sums(x, target, w, hard_majority, on_kernel), eps)
    t = labels_to_targets(x, target)
    pos_w = t if w is None else t * w
    neg_w = 1 - t if w is None else (1 - t) * w
    neg_prob = (-x).sigmoid()
    if hard_majority:
        neg_prob = _hard(neg_prob)
    return _one_vs_all_terms(pos_w, neg_w, x.sigmoid(), neg_prob, 0, eps)


def _positive_sums(x: Tensor, target: Tensor, w: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
    """Per-class ``(sum w t p, sum w t)`` over the positives, without an ``(N, C)`` pass for
    integer labels (a gather of the ``M`` positive logits)."""
    num_classes = x.size(1)
    if target.is_floating_point():
        t = target.to(x.dtype) if w is None else target.to(x.dtype) * w
        return (t * x.sigmoid()).sum(0), t.sum(0)
    rows = ((target >= 0) & (target < num_classes)).nonzero().squeeze(1)
    cols = target[rows]
    w_pos = x.new_ones(rows.numel()) if w is None else w[rows].reshape(-1)
    num = x.new_zeros(num_classes).index_add(0, cols, w_pos * x[rows, cols].sigmoid())
    return num, x.new_zeros(num_classes).index_add(0, cols, w_pos)


def _dense_sigmoid_loss(pred: Tensor, target: Tensor, weight: Optional[Tensor], gamma: float,
                        alpha: float, eps: float, reduction: str,
                        avg_factor: AvgFactor) -> Tensor:
    """The dense-head form (``negative='focal'``), reduced; autocast must be off.

    ``alpha * mean over the batch's classes of -log q+_c`` plus focal loss's negative terms
    summed over the anchors and divided by the number of positives (``avg_factor``, else the
    weighted count of positives). ``'none'`` gives per-class terms whose mean is the loss.
    """
    if pred.dim() != 2:
        raise ValueError(f'pred must be logits of shape (N, C), got {tuple(pred.shape)}')
    check_label_shape(pred, target)
    check_avg_factor(check_reduction(reduction), avg_factor)
    x = as_float32(pred)
    w = _anchor_weight(weight, x)
    check_target_values(x, target, w)
    num_classes = x.size(1)
    pos_terms, pos_cnt = _present_class_terms(*_positive_sums(x, target, w), eps, alpha)
    normaliser = _normaliser(avg_factor, pos_cnt)
    negatives = FocalTerms(gamma=gamma, alpha=alpha, positive_weight=x.new_zeros(num_classes))
    neg = focal_family_loss(x, target, negatives, weight,
                            'none' if reduction == 'none' else 'sum')
    if reduction == 'none':
        return pos_terms + num_classes * neg.sum(0) / normaliser
    loss = pos_terms.mean() + neg / normaliser if num_classes else x.sum()
    return loss * num_classes if reduction == 'sum' else loss


def _normaliser(avg_factor: AvgFactor, pos_cnt: Tensor) -> Union[float, Tensor]:
    """What the dense forms divide the negatives' sum by: ``avg_factor + eps`` (MMDetection's
    guard against 0) or the number of positives per process (the weighted count summed over
    processes, ``pos_cnt``, divided by their number; at least 1), as a head's ``avg_factor``
    would be under DDP."""
    divisor = reduction_divisor(1, 'mean', avg_factor)
    if avg_factor is not None:
        return divisor
    return (pos_cnt.sum() / world_size()).clamp(min=1)


def _dense_heatmap_loss(pred: Tensor, target: Tensor, pos_inds: Optional[Tensor],
                        pos_labels: Optional[Tensor], weight: Optional[Tensor], gamma: float,
                        focal_power: float, eps: float, reduction: str,
                        avg_factor: AvgFactor) -> Tensor:
    """The heatmap form with ``GaussianFocalLoss``'s negatives (``negative='focal'``), reduced.

    ``mean over the batch's classes of -log q+_c`` over the peaks, plus
    ``-log(1 - p) p^focal_power (1 - t)^gamma`` summed over the pixels and divided by the
    number of peaks (``avg_factor``, else counted). ``'none'`` gives per-class terms whose
    mean is the loss.
    """
    check_avg_factor(check_reduction(reduction), avg_factor)
    p = as_float32(pred).clamp(0, 1)
    t = target.to(p.dtype)
    peak = _peaks(p, t, pos_inds, pos_labels)
    neg = -(1 - p + 1e-12).log() * p.pow(focal_power) * (1 - t).pow(gamma) * (1 - peak)
    if weight is not None:
        w = as_float32(weight).to(p.dtype)
        peak, neg = peak * w, neg * w
    dims = [0] + list(range(2, p.dim()))
    num_classes = p.size(1)
    pos_terms, pos_cnt = _present_class_terms((peak * p).sum(dims), peak.sum(dims), eps, 1.0)
    neg_terms = num_classes * neg.sum(dims) / _normaliser(avg_factor, pos_cnt)
    return _reduce_terms(pos_terms + neg_terms, reduction, None)


def _softmax_terms(pred: Tensor, target: Tensor, weight: Optional[Tensor],
                   hard_majority: bool, eps: float) -> Tensor:
    """Per-class softmax terms ``(M,)``; autocast must be off."""
    if pred.dim() != 2:
        raise ValueError(f'pred must be logits of shape (N, M), got {tuple(pred.shape)}')
    check_label_shape(pred, target)
    x = as_float32(pred)
    w = _anchor_weight(weight, x[:, :1])
    if not target.is_floating_point():
        _check_labels(target, x.size(1) - 1, None if w is None else w[:, 0] > 0)
    t = labels_to_targets(x, target)
    if w is not None:
        t = t * w
    prob = x.softmax(-1)
    if hard_majority:
        prob = torch.cat([prob[:, :-1], _hard(prob[:, -1:])], dim=1)
    num, count = all_reduce_sum(torch.stack([(t * prob).sum(0), t.sum(0)]))
    return _neg_log_mean(num, count, eps)


def _heatmap_terms(pred: Tensor, target: Tensor, pos_inds: Optional[Tensor],
                   pos_labels: Optional[Tensor], weight: Optional[Tensor], gamma: float,
                   hard_majority: bool, eps: float) -> Tensor:
    """Per-channel heatmap terms ``(C,)``; autocast must be off."""
    p = as_float32(pred).clamp(0, 1)
    t = target.to(p.dtype)
    peak = _peaks(p, t, pos_inds, pos_labels)
    neg_w = (1 - peak) * (1 - t).pow(gamma)
    if weight is not None:
        w = as_float32(weight).to(p.dtype)
        peak, neg_w = peak * w, neg_w * w
    neg_prob = 1 - p
    if hard_majority:
        neg_prob = _hard(neg_prob)
    dims = [0] + list(range(2, p.dim()))
    return _one_vs_all_terms(peak, neg_w, p, neg_prob, dims, eps)


def parameter_free_loss(pred: Tensor,
                        target: Tensor,
                        weight: Optional[Tensor] = None,
                        hard_majority: bool = False,
                        eps: float = 1e-6,
                        reduction: str = 'mean',
                        avg_factor: AvgFactor = None) -> Tensor:
    """One-vs-all (sigmoid) PF-loss over a whole mini-batch, eq. (13) applied per class.

    Args:
        pred: Logits ``(N, C)``.
        target: Integer labels ``(N,)`` in ``[0, C]`` (``C`` = background) or targets
            ``(N, C)`` in [0, 1] (one-hot or soft: class memberships).
        weight: Non-negative weights ``(N,)`` or ``(N, C)``; 0 excludes a sample.
            Defaults to None.
        hard_majority: PFH: a negative's ``1 - p`` above 0.5 counts as the constant 1.
            Defaults to False.
        eps: The paper's small delta in ``q = (sum + eps) / (count + eps)``. Defaults to 1e-6.
        reduction: ``'mean'`` (PF), ``'sum'`` (``C * PF``) or ``'none'`` (terms ``(C,)``).
            Defaults to ``'mean'``.
        avg_factor: Never rescales (module docstring); raises with ``'sum'``.
            Defaults to None.

    Returns:
        The loss (a scalar, or ``(C,)`` per-class terms), float32 or float64.
    """
    check_positive(eps, 'eps')
    with no_autocast(pred):
        return _reduce_terms(_sigmoid_terms(pred, target, weight, hard_majority, eps),
                             reduction, avg_factor)


def softmax_parameter_free_loss(pred: Tensor,
                                target: Tensor,
                                weight: Optional[Tensor] = None,
                                hard_majority: bool = False,
                                eps: float = 1e-6,
                                reduction: str = 'mean',
                                avg_factor: AvgFactor = None) -> Tensor:
    """Softmax PF-loss, the paper's eq. (9)-(10), for softmax heads.

    MMDetection's softmax heads (``use_sigmoid=False``) output ``C + 1`` logits per anchor,
    background last, with labels in ``[0, C]``; here every one of the ``M = pred.size(-1)``
    columns is a class of eq. (9), the background included. ``p_i`` is the softmax
    probability of sample ``i``'s own class, ``q_j`` the mean of ``p_i`` over class ``j``.

    Args:
        pred: Logits ``(N, M)``.
        target: Labels ``(N,)`` in ``[0, M - 1]``, or targets ``(N, M)`` (class memberships).
        weight: Non-negative per-sample weights ``(N,)``; 0 excludes a sample.
            Defaults to None.
        hard_majority: PFH: a background sample's background probability above 0.5 counts
            as the constant 1. Defaults to False.
        eps: The paper's small delta. Defaults to 1e-6.
        reduction: ``'mean'`` (PF), ``'sum'`` or ``'none'`` (terms ``-log q_j``, ``(M,)``).
            Defaults to ``'mean'``.
        avg_factor: Never rescales (module docstring); raises with ``'sum'``.
            Defaults to None.

    Returns:
        The loss (a scalar, or ``(M,)`` per-class terms).
    """
    check_positive(eps, 'eps')
    with no_autocast(pred):
        return _reduce_terms(_softmax_terms(pred, target, weight, hard_majority, eps),
                             reduction, avg_factor)


def gaussian_parameter_free_loss(pred: Tensor,
                                 target: Tensor,
                                 weight: Optional[Tensor] = None,
                                 gamma: float = 4.0,
                                 hard_majority: bool = False,
                                 eps: float = 1e-6,
                                 reduction: str = 'mean',
                                 avg_factor: AvgFactor = None,
                                 pos_inds: Optional[Tensor] = None,
                                 pos_labels: Optional[Tensor] = None) -> Tensor:
    """PF-loss on CenterNet heatmaps (input contract of MMDetection's ``GaussianFocalLoss``).

    For channel (class) ``c`` over all images and pixels: ``q+_c`` is the mean of ``p`` over
    the peaks of channel ``c`` (``t == 1``, or the positions ``pos_inds`` / ``pos_labels``);
    ``q-_c`` the mean of ``1 - p`` over the other pixels, weighted by ``(1 - t) ** gamma``
    (CenterNet's penalty reduction near a peak). ``PF = (1/C) * sum_c [-log q+_c - log q-_c]``;
    a channel without peaks has a zero positive term.

    Args:
        pred: Probabilities after sigmoid ``(B, C, ...)`` (or ``(N, C)`` with ``pos_inds``);
            clamped to [0, 1].
        target: Gaussian heatmap of the same shape, peaks where it equals 1.
        weight: Non-negative weights broadcastable to ``pred``; they multiply both sums.
            Defaults to None.
        gamma: Exponent of the negative weighting ``(1 - t) ** gamma``. Defaults to 4.
        hard_majority: PFH: a non-peak pixel's ``1 - p`` above 0.5 counts as the constant 1.
            Defaults to False.
        eps: The paper's small delta. Defaults to 1e-6.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (terms ``(C,)``). Defaults to ``'mean'``.
        avg_factor: The number of peaks MMDetection passes; never rescales; raises with
            ``'sum'``. Defaults to None.
        pos_inds: Rows of ``pred`` ``(N, C)`` that hold a peak, in ``[0, N)``
            (``CenterNetUpdateHead``'s form); requires ``pos_labels``. Defaults to None.
        pos_labels: The class of each of those peaks, in ``[0, C)``. Defaults to None.

    Returns:
        The loss (a scalar, or ``(C,)`` per-class terms).
    """
    if pred.dim() < 2 or pred.shape != target.shape:
        raise ValueError(f'pred {tuple(pred.shape)} and target {tuple(target.shape)} must '
                         'have the same shape (B, C, ...)')
    check_non_negative(gamma, 'gamma')
    check_positive(eps, 'eps')
    if (pos_inds is None) != (pos_labels is None):
        raise ValueError('pos_inds and pos_labels go together: give both or neither')
    if pos_inds is not None:
        check_positions(pred, pos_inds, pos_labels)
    with no_autocast(pred):
        terms = _heatmap_terms(pred, target, pos_inds, pos_labels, weight, gamma,
                               hard_majority, eps)
        return _reduce_terms(terms, reduction, avg_factor)


@register(MODELS)
class ParameterFreeLoss(ClassificationLoss):
    """Parameter-Free loss (Du et al., TNNLS 2021) for sigmoid or softmax classification heads.

    A batch statistic: give it all anchors of the mini-batch (all images, all levels) in one
    call. Two negative terms (``negative``):

    * ``'focal'`` (default, the detection form): the positive term stays PF's, a mean over
      the batch's classes of ``-log q+_c`` (every class present counts the same, however many
      anchors it has), weighted by ``alpha``; the negatives are focal loss's,
      ``(1 - alpha) p^gamma l`` summed over the anchors and divided by the number of
      positives (``avg_factor``), as RetinaNet normalises them. The paper's mean over every
      negative gives each of a dense head's ~10^4 background anchors a gradient ~10^3 times
      smaller than focal loss does, and the detector then fires everywhere.
    * ``'mean'``: the paper's eq. (13) per class (module docstring); ``hard_majority`` (PFH)
      and the softmax form (``use_sigmoid=False``) are forms of it.

    Args:
        use_sigmoid: ``True``: one-vs-all over logits ``(N, C)``, labels in ``[0, C]`` with
            ``C`` = background. ``False``: the paper's softmax form eq. (9)-(10) over
            ``(N, C + 1)`` logits, background last (:func:`softmax_parameter_free_loss`;
            ``negative='mean'`` only). Defaults to True.
        negative: ``'focal'`` or ``'mean'``. Defaults to ``'focal'``.
        gamma: Focusing parameter of the focal negatives, 0 or at least 1 (``negative='focal'``
            only). Defaults to 2 (None).
        alpha: Weight of the positive term, in ``[0, 1]``; the negatives get ``1 - alpha``
            (``negative='focal'`` only). Defaults to 0.25 (None).
        hard_majority: The paper's PFH variant (``negative='mean'`` only). Defaults to False.
        eps: The paper's small delta, positive. Defaults to 1e-6.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (per-class terms whose mean is the
            loss). Defaults to ``'mean'``.
        loss_weight: Multiplies the loss, last. Defaults to 1.

    Raises:
        ValueError: For a hyper-parameter outside its range, NaN or inf, naming it.
    """

    def __init__(self,
                 use_sigmoid: bool = True,
                 negative: str = 'focal',
                 gamma: Optional[float] = None,
                 alpha: Optional[float] = None,
                 hard_majority: bool = False,
                 eps: float = 1e-6,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(reduction, loss_weight)
        _check_negative(negative, hard_majority)
        if negative == 'focal' and not use_sigmoid:
            raise ValueError("the softmax form is the paper's eq. (9)-(10): set negative='mean' "
                             'with use_sigmoid=False')
        self.use_sigmoid = use_sigmoid
        self.negative = negative
        self.gamma, self.alpha = _focal_parameters(negative, gamma=(gamma, 2.0),
                                                   alpha=(alpha, 0.25))
        if negative == 'focal':
            check_gamma(self.gamma)
            check_fraction(self.alpha, 'alpha')
        self.hard_majority = hard_majority
        self.eps = check_positive(eps, 'eps')

    def loss(self, pred: Tensor, target: Tensor, weight: Optional[Tensor], reduction: str,
             avg_factor: AvgFactor) -> Tensor:
        """The dense form, or the paper's one-vs-all or softmax PF terms, reduced."""
        if self.negative == 'focal':
            return _dense_sigmoid_loss(pred, target, weight, self.gamma, self.alpha, self.eps,
                                       reduction, avg_factor)
        terms_of = _sigmoid_terms if self.use_sigmoid else _softmax_terms
        terms = terms_of(pred, target, weight, self.hard_majority, self.eps)
        return _reduce_terms(terms, reduction, avg_factor)

    def extra_repr(self) -> str:
        return (f'use_sigmoid={self.use_sigmoid}, negative={self.negative!r}, '
                f'gamma={self.gamma}, alpha={self.alpha}, '
                f'hard_majority={self.hard_majority}, eps={self.eps}, '
                f'reduction={self.reduction!r}, loss_weight={self.loss_weight}')


@register(MODELS)
class GaussianParameterFreeLoss(HeatmapLoss):
    """PF-loss for CenterNet heatmaps; a drop-in for MMDetection's ``GaussianFocalLoss``.

    Takes probabilities after sigmoid ``(B, C, H, W)`` and Gaussian targets (peaks where
    ``t == 1``), or ``(N, C)`` rows with ``pos_inds`` / ``pos_labels`` as
    ``CenterNetUpdateHead`` passes them. ``negative='focal'`` (default): PF's positive term
    (a mean over the batch's classes of ``-log q+_c`` over the peaks) plus
    ``GaussianFocalLoss``'s negatives, ``-log(1 - p) p^focal_power (1 - t)^gamma`` summed and
    divided by the number of peaks; ``'mean'``: the paper's form
    (:func:`gaussian_parameter_free_loss`).

    Args:
        use_sigmoid: Must be ``True``: the heatmap is per-class sigmoid probabilities.
            Defaults to True.
        negative: ``'focal'`` or ``'mean'``. Defaults to ``'focal'``.
        gamma: Exponent of the negative weighting ``(1 - t) ** gamma``, ``>= 0``. Defaults to
            4 (CenterNet's).
        focal_power: Power of ``p`` in the focal negatives, ``>= 0`` (``GaussianFocalLoss``'s
            ``alpha``; ``negative='focal'`` only). Defaults to 2 (None).
        hard_majority: The paper's PFH variant on the non-peak pixels (``negative='mean'``
            only). Defaults to False.
        eps: The paper's small delta, positive. Defaults to 1e-6.
        reduction: ``'mean'`` (PF), ``'sum'`` or ``'none'`` (per-class terms).
            Defaults to ``'mean'``.
        loss_weight: Multiplies the loss, last. Defaults to 1.

    Raises:
        ValueError: For a hyper-parameter outside its range, NaN or inf, naming it.
    """

    def __init__(self,
                 use_sigmoid: bool = True,
                 negative: str = 'focal',
                 gamma: float = 4.0,
                 focal_power: Optional[float] = None,
                 hard_majority: bool = False,
                 eps: float = 1e-6,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(reduction, loss_weight)
        if not use_sigmoid:
            raise ValueError('GaussianParameterFreeLoss takes per-class sigmoid probabilities; '
                             'use_sigmoid=False is not supported')
        _check_negative(negative, hard_majority)
        self.use_sigmoid = use_sigmoid
        self.negative = negative
        self.gamma = check_non_negative(gamma, 'gamma')
        (self.focal_power,) = _focal_parameters(negative, focal_power=(focal_power, 2.0))
        if negative == 'focal':
            check_non_negative(self.focal_power, 'focal_power')
        self.hard_majority = hard_majority
        self.eps = check_positive(eps, 'eps')

    def loss(self, pred: Tensor, target: Tensor, pos_inds: Optional[Tensor],
             pos_labels: Optional[Tensor], weight: Optional[Tensor], reduction: str,
             avg_factor: AvgFactor) -> Tensor:
        """The dense or the paper's heatmap form, reduced."""
        if self.negative == 'focal':
            return _dense_heatmap_loss(pred, target, pos_inds, pos_labels, weight, self.gamma,
                                       self.focal_power, self.eps, reduction, avg_factor)
        terms = _heatmap_terms(pred, target, pos_inds, pos_labels, weight, self.gamma,
                               self.hard_majority, self.eps)
        return _reduce_terms(terms, reduction, avg_factor)

    def extra_repr(self) -> str:
        return (f'negative={self.negative!r}, gamma={self.gamma}, '
                f'focal_power={self.focal_power}, '
                f'hard_majority={self.hard_majority}, eps={self.eps}, '
                f'reduction={self.reduction!r}, loss_weight={self.loss_weight}')


def _check_negative(negative: str, hard_majority: bool) -> None:
    if negative not in ('focal', 'mean'):
        raise ValueError(f"negative must be 'focal' (the dense form) or 'mean' (the paper's), "
                         f'got {negative!r}')
    if hard_majority and negative == 'focal':
        raise ValueError("hard_majority (PFH) is a form of the paper's negative mean: set "
                         "negative='mean'")


def _focal_parameters(negative: str, **given: Tuple[Optional[float], float]) -> tuple:
    """The focal negatives' parameters, defaults filled in; with ``negative='mean'`` they
    have no effect, so giving one raises and each is None."""
    if negative == 'mean':
        named = sorted(name for name, (value, _) in given.items() if value is not None)
        if named:
            raise ValueError(f"{', '.join(named)} parametrise the focal negatives of "
                             f"negative='focal' and have no effect with negative='mean': "
                             'remove them or set negative=\'focal\'')
        return tuple(None for _ in given)
    return tuple(default if value is None else value for value, default in given.values())

