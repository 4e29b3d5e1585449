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
from typing import Optional

import torch
from mmdet.registry import MODELS
from torch import Tensor

from ..registry import register
from .contract import (
    AvgFactor,
    ClassificationLoss,
    HeatmapLoss,
    as_float32,
    check_label_shape,
    check_reduction,
    labels_to_targets,
    no_autocast,
)
from .distributed import all_reduce_sum
from .fast import dispatch
from .fast.parameter_free import label_sums


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


def _anchor_weight(weight: Optional[Tensor], pred: Tensor) -> Optional[Tensor]:
    """Weight ``(N,)``, ``(N, 1)`` or ``(N, C)`` as a tensor broadcastable to ``pred (N, C)``."""
    if weight is None:
        return None
    weight = as_float32(weight).to(pred.dtype)
    if weight.shape == pred.shape:
        return weight
    if weight.dim() <= 2 and weight.numel() == pred.size(0):
        return weight.reshape(-1, 1)
    raise ValueError(f'weight of shape {tuple(weight.shape)} must be per sample '
                     f'({pred.size(0)},) or match predictions of shape {tuple(pred.shape)}')


def _reduce_terms(terms: Tensor, reduction: str, avg_factor: AvgFactor) -> Tensor:
    """Reduce the per-class terms; ``avg_factor`` never rescales (see the module docstring)."""
    if check_reduction(reduction) == 'none':
        return terms
    if reduction == 'sum':
        if avg_factor is not None:
            raise ValueError('avg_factor can not be used with reduction="sum"')
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
    if not target.is_floating_point():
        _check_labels(target, x.size(1), None if w is None else (w > 0).any(-1))
    if (not target.is_floating_point() and (w is None or w.size(1) == 1)
            and dispatch.get_impl() != 'reference' and not (w is not None and w.requires_grad)):
        return _terms_from_sums(*label_sums(x, target, w, hard_majority), eps)
    t = labels_to_targets(x, target)
    pos_w = t if w is None else t * w
    neg_w = 1 - t if w is None else (1 - t) * w
    neg_prob = (-x).sigmoid()
    if hard_majority:
        neg_prob = _hard(neg_prob)
    return _one_vs_all_terms(pos_w, neg_w, x.sigmoid(), neg_prob, 0, eps)


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
    if pos_inds is None:
        peak = t.eq(1).to(p.dtype)
    else:
        peak = torch.zeros_like(p)
        peak[pos_inds, pos_labels] = 1
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
        pos_inds: Rows of ``pred`` ``(N, C)`` that hold a peak (``CenterNetUpdateHead``'s
            form); requires ``pos_labels``. Defaults to None.
        pos_labels: The class of each of those peaks. Defaults to None.

    Returns:
        The loss (a scalar, or ``(C,)`` per-class terms).
    """
    if pred.dim() < 2 or pred.shape != target.shape:
        raise ValueError(f'pred {tuple(pred.shape)} and target {tuple(target.shape)} must '
                         'have the same shape (B, C, ...)')
    with no_autocast(pred):
        terms = _heatmap_terms(pred, target, pos_inds, pos_labels, weight, gamma,
                               hard_majority, eps)
        return _reduce_terms(terms, reduction, avg_factor)


@register(MODELS)
class ParameterFreeLoss(ClassificationLoss):
    """Parameter-Free loss (Du et al., TNNLS 2021) for sigmoid or softmax classification heads.

    A batch statistic: give it all anchors of the mini-batch (all images, all levels) in one
    call. See the module docstring for the formulas and for what ``weight``, ``avg_factor``,
    ``reduction`` and ``hard_majority`` do.

    Args:
        use_sigmoid: ``True``: one-vs-all form over logits ``(N, C)``, labels in ``[0, C]``
            with ``C`` = background (:func:`parameter_free_loss`). ``False``: the paper's
            softmax form eq. (9)-(10) over ``(N, C + 1)`` logits, background last
            (:func:`softmax_parameter_free_loss`). Defaults to True.
        hard_majority: The paper's PFH variant. Defaults to False.
        eps: The paper's small delta, positive. Defaults to 1e-6.
        reduction: ``'mean'`` (PF), ``'sum'`` or ``'none'`` (per-class terms).
            Defaults to ``'mean'``.
        loss_weight: Multiplies the loss, last. Defaults to 1.
    """

    def __init__(self,
                 use_sigmoid: bool = True,
                 hard_majority: bool = False,
                 eps: float = 1e-6,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(reduction, loss_weight)
        self.use_sigmoid = use_sigmoid
        self.hard_majority = hard_majority
        self.eps = _check_eps(eps)

    def loss(self, pred: Tensor, target: Tensor, weight: Optional[Tensor], reduction: str,
             avg_factor: AvgFactor) -> Tensor:
        """The one-vs-all or softmax PF terms, reduced."""
        terms_of = _sigmoid_terms if self.use_sigmoid else _softmax_terms
        terms = terms_of(pred, target, weight, self.hard_majority, self.eps)
        return _reduce_terms(terms, reduction, avg_factor)

    def extra_repr(self) -> str:
        return (f'use_sigmoid={self.use_sigmoid}, hard_majority={self.hard_majority}, '
                f'eps={self.eps}, reduction={self.reduction!r}, loss_weight={self.loss_weight}')


@register(MODELS)
class GaussianParameterFreeLoss(HeatmapLoss):
    """PF-loss for CenterNet heatmaps; a drop-in for MMDetection's ``GaussianFocalLoss``.

    Takes probabilities after sigmoid ``(B, C, H, W)`` and Gaussian targets (peaks where
    ``t == 1``), or ``(N, C)`` rows with ``pos_inds`` / ``pos_labels`` as
    ``CenterNetUpdateHead`` passes them; see :func:`gaussian_parameter_free_loss`.

    Args:
        use_sigmoid: Must be ``True``: the heatmap is per-class sigmoid probabilities.
            Defaults to True.
        gamma: Exponent of the negative weighting ``(1 - t) ** gamma``. Defaults to 4
            (CenterNet's).
        hard_majority: The paper's PFH variant on the non-peak pixels. Defaults to False.
        eps: The paper's small delta, positive. Defaults to 1e-6.
        reduction: ``'mean'`` (PF), ``'sum'`` or ``'none'`` (per-class terms).
            Defaults to ``'mean'``.
        loss_weight: Multiplies the loss, last. Defaults to 1.
    """

    def __init__(self,
                 use_sigmoid: bool = True,
                 gamma: float = 4.0,
                 hard_majority: bool = False,
                 eps: float = 1e-6,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(reduction, loss_weight)
        if not use_sigmoid:
            raise ValueError('GaussianParameterFreeLoss takes per-class sigmoid probabilities; '
                             'use_sigmoid=False is not supported')
        self.use_sigmoid = use_sigmoid
        self.gamma = gamma
        self.hard_majority = hard_majority
        self.eps = _check_eps(eps)

    def loss(self, pred: Tensor, target: Tensor, pos_inds: Optional[Tensor],
             pos_labels: Optional[Tensor], weight: Optional[Tensor], reduction: str,
             avg_factor: AvgFactor) -> Tensor:
        """The per-channel heatmap PF terms, reduced."""
        terms = _heatmap_terms(pred, target, pos_inds, pos_labels, weight, self.gamma,
                               self.hard_majority, self.eps)
        return _reduce_terms(terms, reduction, avg_factor)

    def extra_repr(self) -> str:
        return (f'gamma={self.gamma}, hard_majority={self.hard_majority}, eps={self.eps}, '
                f'reduction={self.reduction!r}, loss_weight={self.loss_weight}')


def _check_eps(eps: float) -> float:
    if eps <= 0:
        raise ValueError(f'eps must be positive, got {eps}')
    return eps
