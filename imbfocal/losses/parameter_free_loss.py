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

Batch statistics and distribution: the four per-class sums are one reduction over the anchors
(no loop over classes) and, under ``torch.distributed``, are summed over the processes with an
autograd-aware all-reduce (``all_reduce_sum``), so every process computes the statistic of the
global batch, and DDP's gradient averaging yields the single-process gradient. From integer
labels with per-anchor weights the sums come from one fused Function
(:mod:`imbfocal.losses.fused_parameter_free`: a reduction pass forward, an element-wise pass
backward, no ``(N, C)`` temporaries; Triton kernels on CUDA); one-hot or soft targets,
per-element weights, weights that require gradients, and ``fused.use_impl('reference')`` take
the dense autograd path, which the tests hold the fused one to.

Choices this module makes (the paper is a classification paper; detection needs more):

* ``weight``: a non-negative weight per anchor ``(N,)`` (or per anchor and class ``(N, C)``;
  per pixel for the heatmap form) weights the sums: ``q = sum(w * prob) / sum(w)``, i.e.
  weighted arithmetic means. A binary weight is exactly "select the valid anchors ``V``"
  (MMDetection's ``label_weights``); an anchor with weight 0 takes no part, ignored anchors
  included.
* Soft / one-hot targets ``t`` in [0, 1] are class memberships: positives are weighted by
  ``t``, negatives by ``1 - t``, exactly eq. (13) with ``t_i``. Integer labels (background
  ``= C``) give the one-hot case.
* ``reduction``: the loss is a vector of per-class terms ``(C,)``; ``'none'`` returns it,
  ``'mean'`` (default) its mean over classes (the PF value; absent classes count in the mean
  with their 0, as in eq. (9)), ``'sum'`` its sum (``C`` times the mean).
* ``avg_factor``: PF is self-normalised (per-class means, then the mean over classes). The
  ``avg_factor`` MMDetection heads pass is a number of positive anchors, the normaliser of a
  *sum* of per-anchor losses; dividing a per-class mean by it would make PF's scale depend on
  how many objects a batch holds, the very thing PF removes. So ``avg_factor`` never rescales
  PF: with ``'mean'`` the mean over classes is the averaging (the head's ``avg_factor`` is
  accepted because every head passes it), with ``'none'`` it has no effect (as in
  MMDetection's ``weight_reduce_loss``), and with ``'sum'`` it raises ``ValueError`` (as in
  MMDetection's ``weight_reduce_loss``).
* ``hard_majority=True`` is the paper's PFH variant (sec. III-E): a majority sample's
  probability above 0.5 is set to the constant 1. In the one-vs-all form the majority samples
  of class ``c`` are its negatives ``N_c``: ``1 - p_ic > 0.5`` counts as 1 (still counted in
  ``|N_c|``). Being a constant, it passes no gradient: only the hard negatives
  (``p_ic >= 0.5``) are trained by the negative term. In the softmax form the majority class
  is the background (last) column; in the heatmap form the non-peak pixels.
* ``eps`` (default 1e-6) is the paper's small delta; it also makes every ``log`` finite (the
  smallest ``q`` is ``eps / (count + eps)``). ``1 - p`` is computed as ``sigmoid(-x)`` so that
  confident wrong negatives (``p`` rounding to 1 in float32) keep their gradient.
* Everything is computed in float32 (float64 stays float64) with autocast disabled;
  ``loss_weight`` is applied last.
"""
from typing import Optional

import torch
from mmdet.registry import MODELS
from torch import Tensor, nn

from ..registry import register
from .fused import get_impl
from .fused_parameter_free import label_sums
from .utils import (AvgFactor, all_reduce_sum, as_float32, check_reduction,
                    labels_to_targets, resolve_reduction)

__all__ = [
    'parameter_free_loss', 'softmax_parameter_free_loss', 'gaussian_parameter_free_loss',
    'ParameterFreeLoss', 'GaussianParameterFreeLoss'
]

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
        hard_majority: PFH: a negative's ``1 - p`` above 0.5 counts as the constant 1.
        eps: The paper's small delta in ``q = (sum + eps) / (count + eps)``.
        reduction: ``'mean'`` (PF), ``'sum'`` (``C * PF``) or ``'none'`` (terms ``(C,)``).
        avg_factor: Never rescales (module docstring); raises with ``'sum'``.

    Returns:
        The loss (a scalar, or ``(C,)`` per-class terms), float32 or float64.
    """
    if pred.dim() != 2:
        raise ValueError(f'pred must be logits of shape (N, C), got {tuple(pred.shape)}')
    with torch.autocast(device_type=pred.device.type, enabled=False):
        x = as_float32(pred)
        w = _anchor_weight(weight, x)
        if not target.is_floating_point():
            _check_labels(target, x.size(1), None if w is None else (w > 0).any(-1))
        if (not target.is_floating_point() and (w is None or w.size(1) == 1)
                and get_impl() != 'reference' and not (w is not None and w.requires_grad)):
            terms = _terms_from_sums(*label_sums(x, target, w, hard_majority), eps)
            return _reduce_terms(terms, reduction, avg_factor)
        t = labels_to_targets(x, target)
        pos_w = t if w is None else t * w
        neg_w = 1 - t if w is None else (1 - t) * w
        neg_prob = (-x).sigmoid()
        if hard_majority:
            neg_prob = _hard(neg_prob)
        terms = _one_vs_all_terms(pos_w, neg_w, x.sigmoid(), neg_prob, 0, eps)
        return _reduce_terms(terms, reduction, avg_factor)


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
    columns is a class of eq. (9), the background included (in the paper's binary example the
    majority class is one of the ``M = 2`` classes). ``p_i`` is the softmax probability of
    sample ``i``'s own class, ``q_j`` the mean of ``p_i`` over class ``j``'s samples.

    Args:
        pred: Logits ``(N, M)``.
        target: Labels ``(N,)`` in ``[0, M - 1]``, or targets ``(N, M)`` (class memberships).
        weight: Non-negative per-sample weights ``(N,)``; 0 excludes a sample.
        hard_majority: PFH: a background sample's background probability above 0.5 counts
            as the constant 1 (the background column is the majority class).
        eps: The paper's small delta.
        reduction: ``'mean'`` (PF), ``'sum'`` or ``'none'`` (terms ``-log q_j``, ``(M,)``).
        avg_factor: Never rescales (module docstring); raises with ``'sum'``.

    Returns:
        The loss (a scalar, or ``(M,)`` per-class terms).
    """
    if pred.dim() != 2:
        raise ValueError(f'pred must be logits of shape (N, M), got {tuple(pred.shape)}')
    with torch.autocast(device_type=pred.device.type, enabled=False):
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
        return _reduce_terms(_neg_log_mean(num, count, eps), reduction, avg_factor)


def gaussian_parameter_free_loss(pred: Tensor,
                                 target: Tensor,
                                 weight: Optional[Tensor] = None,
                                 gamma: float = 4.0,
                                 hard_majority: bool = False,
                                 eps: float = 1e-6,
                                 reduction: str = 'mean',
                                 avg_factor: AvgFactor = None) -> Tensor:
    """PF-loss on CenterNet heatmaps (input contract of MMDetection's ``GaussianFocalLoss``).

    For channel (class) ``c`` over all images and pixels: ``q+_c`` is the mean of ``p`` over the
    peaks (``t == 1``) of channel ``c``; ``q-_c`` the mean of ``1 - p`` over the other pixels,
    weighted by ``(1 - t) ** gamma`` (CenterNet's penalty reduction near a peak, ``gamma = 4``
    as in MMDetection). ``PF = (1/C) * sum_c [-log q+_c - log q-_c]``; a channel without peaks
    has a zero positive term, so a batch without any peak gives the mean negative term.

    Args:
        pred: Probabilities after sigmoid ``(B, C, ...)``; clamped to [0, 1].
        target: Gaussian heatmap of the same shape, peaks where it equals 1.
        weight: Non-negative weights broadcastable to ``pred``; they multiply both sums.
        gamma: Exponent of the negative weighting ``(1 - t) ** gamma``.
        hard_majority: PFH: a non-peak pixel's ``1 - p`` above 0.5 counts as the constant 1.
        eps: The paper's small delta.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (terms ``(C,)``).
        avg_factor: The number of peaks MMDetection passes; never rescales (the per-class
            peak counts are computed here); raises with ``'sum'``.

    Returns:
        The loss (a scalar, or ``(C,)`` per-class terms).
    """
    if pred.dim() < 2 or pred.shape != target.shape:
        raise ValueError(f'pred {tuple(pred.shape)} and target {tuple(target.shape)} must '
                         'have the same shape (B, C, ...)')
    with torch.autocast(device_type=pred.device.type, enabled=False):
        p = as_float32(pred).clamp(0, 1)
        t = target.to(p.dtype)
        peak = t.eq(1).to(p.dtype)
        neg_w = (1 - peak) * (1 - t).pow(gamma)
        if weight is not None:
            w = as_float32(weight).to(p.dtype)
            peak, neg_w = peak * w, neg_w * w
        neg_prob = 1 - p
        if hard_majority:
            neg_prob = _hard(neg_prob)
        dims = [0] + list(range(2, p.dim()))
        terms = _one_vs_all_terms(peak, neg_w, p, neg_prob, dims, eps)
        return _reduce_terms(terms, reduction, avg_factor)


class _PFBase(nn.Module):
    """Shared ``__init__`` arguments and ``forward`` of the PF modules (``_loss`` differs)."""

    def __init__(self, hard_majority: bool, eps: float, reduction: str,
                 loss_weight: float) -> None:
        super().__init__()
        check_reduction(reduction)
        if eps <= 0:
            raise ValueError(f'eps must be positive, got {eps}')
        self.hard_majority = hard_majority
        self.eps = eps
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: AvgFactor = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Compute the loss (float32, float64 stays; autocast disabled), times ``loss_weight``.

        Args:
            pred: Logits ``(N, C)`` (sigmoid), ``(N, C + 1)`` (softmax), or probabilities
                ``(B, C, H, W)`` (heatmap).
            target: Labels ``(N,)`` or targets / Gaussian heatmap of ``pred``'s shape.
            weight: Non-negative weights: per sample ``(N,)``, per element ``(N, C)``
                (sigmoid), broadcastable to ``pred`` (heatmap).
            avg_factor: Accepted from the head; never rescales PF; raises with ``'sum'``.
            reduction_override: ``None``, ``'none'``, ``'mean'`` or ``'sum'``.
        """
        loss = self._loss(pred, target, weight,
                          resolve_reduction(self.reduction, reduction_override), avg_factor)
        return self.loss_weight * loss

    def _loss(self, pred: Tensor, target: Tensor, weight: Optional[Tensor], reduction: str,
              avg_factor: AvgFactor) -> Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return (f'hard_majority={self.hard_majority}, eps={self.eps}, '
                f'reduction={self.reduction!r}, loss_weight={self.loss_weight}')


@register(MODELS)
class ParameterFreeLoss(_PFBase):
    """Parameter-Free loss (Du et al., TNNLS 2021) for sigmoid or softmax classification heads.

    A batch statistic: give it all anchors of the mini-batch (all images, all levels) in one
    call. See the module docstring for the formulas and for what ``weight``, ``avg_factor``,
    ``reduction`` and ``hard_majority`` do.

    Args:
        use_sigmoid: ``True``: one-vs-all form over logits ``(N, C)``, labels in ``[0, C]``
            with ``C`` = background (``parameter_free_loss``). ``False``: the paper's softmax
            form eq. (9)-(10) over ``(N, C + 1)`` logits, background last
            (``softmax_parameter_free_loss``).
        hard_majority: The paper's PFH variant.
        eps: The paper's small delta.
        reduction: ``'mean'`` (PF), ``'sum'`` or ``'none'`` (per-class terms).
        loss_weight: Multiplies the loss, last.
    """

    def __init__(self,
                 use_sigmoid: bool = True,
                 hard_majority: bool = False,
                 eps: float = 1e-6,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(hard_majority, eps, reduction, loss_weight)
        self.use_sigmoid = use_sigmoid

    def _loss(self, pred: Tensor, target: Tensor, weight: Optional[Tensor], reduction: str,
              avg_factor: AvgFactor) -> Tensor:
        fn = parameter_free_loss if self.use_sigmoid else softmax_parameter_free_loss
        return fn(pred, target, weight, hard_majority=self.hard_majority, eps=self.eps,
                  reduction=reduction, avg_factor=avg_factor)

    def extra_repr(self) -> str:
        return f'use_sigmoid={self.use_sigmoid}, ' + super().extra_repr()


@register(MODELS)
class GaussianParameterFreeLoss(_PFBase):
    """PF-loss for CenterNet heatmaps; a drop-in for MMDetection's ``GaussianFocalLoss``.

    Takes probabilities after sigmoid ``(B, C, H, W)`` and Gaussian targets (peaks where
    ``t == 1``); see ``gaussian_parameter_free_loss``.

    Args:
        use_sigmoid: Must be ``True``: the heatmap is per-class sigmoid probabilities.
        gamma: Exponent of the negative weighting ``(1 - t) ** gamma`` (CenterNet's 4).
        hard_majority: The paper's PFH variant on the non-peak pixels.
        eps: The paper's small delta.
        reduction: ``'mean'`` (PF), ``'sum'`` or ``'none'`` (per-class terms).
        loss_weight: Multiplies the loss, last.
    """

    def __init__(self,
                 use_sigmoid: bool = True,
                 gamma: float = 4.0,
                 hard_majority: bool = False,
                 eps: float = 1e-6,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(hard_majority, eps, reduction, loss_weight)
        if not use_sigmoid:
            raise ValueError('GaussianParameterFreeLoss takes per-class sigmoid probabilities; '
                             'use_sigmoid=False is not supported')
        self.use_sigmoid = use_sigmoid
        self.gamma = gamma

    def _loss(self, pred: Tensor, target: Tensor, weight: Optional[Tensor], reduction: str,
              avg_factor: AvgFactor) -> Tensor:
        return gaussian_parameter_free_loss(pred, target, weight, gamma=self.gamma,
                                            hard_majority=self.hard_majority, eps=self.eps,
                                            reduction=reduction, avg_factor=avg_factor)

    def extra_repr(self) -> str:
        return f'gamma={self.gamma}, ' + super().extra_repr()
