"""MMDetection's loss contract, written once for every loss of this package.

Two base modules carry it: :class:`ClassificationLoss` for dense heads (MMDetection's
``FocalLoss`` contract) and :class:`HeatmapLoss` for CenterNet heatmaps (``GaussianFocalLoss``'s,
with ``pos_inds`` / ``pos_labels``). Each ``forward`` resolves ``reduction_override``, computes
the loss in float32 (float64 stays float64) with autocast disabled, and applies
``loss_weight`` last; a subclass only implements ``loss()``. The validation and reduction
helpers below are what the subclasses and the functional forms share; every hyper-parameter is
checked when the loss is built, by one helper per kind of parameter (``check_gamma``,
``check_alpha``, ``check_probability``, ``check_fraction``, ``check_non_negative``,
``check_positive``, ``check_count``), each refusing NaN and inf with the parameter's name.
"""
import math
import numbers
from typing import Optional, Union

import torch
from mmdet.models.losses.utils import weight_reduce_loss
from torch import Tensor, nn

REDUCTIONS = ('none', 'mean', 'sum')
AvgFactor = Optional[Union[int, float, Tensor]]


def no_autocast(tensor: Tensor) -> torch.autocast:
    """A context in which autocast is off on ``tensor``'s device: the loss maths run in the
    inputs' own precision (float32, or float64 for float64 inputs) under AMP."""
    return torch.autocast(device_type=tensor.device.type, enabled=False)


def check_reduction(reduction: str) -> str:
    """Return ``reduction`` if it is one of ``'none'``, ``'mean'``, ``'sum'``, else raise."""
    if reduction not in REDUCTIONS:
        raise ValueError(f'reduction must be one of {REDUCTIONS}, got {reduction!r}')
    return reduction


def resolve_reduction(reduction: str, reduction_override: Optional[str]) -> str:
    """MMDetection's ``reduction_override`` rule, with a ValueError instead of an assert."""
    if reduction_override not in (None, ) + REDUCTIONS:
        raise ValueError(f'reduction_override must be one of {(None, ) + REDUCTIONS}, '
                         f'got {reduction_override!r}')
    return reduction_override or reduction


LABEL_DTYPES = (torch.int64, torch.int32)


def check_label_shape(pred: Tensor, target: Tensor) -> bool:
    """Whether ``target`` holds integer labels ``(N,)`` for ``pred`` ``(N, C)``, else targets.

    Raises:
        ValueError: If ``target`` is neither labels (int64 or int32) nor floating-point
            targets of ``pred``'s shape.
    """
    if target.dim() == pred.dim() - 1 and not target.is_floating_point():
        if target.dtype not in LABEL_DTYPES:
            raise ValueError(f'labels must be int64 (or int32) class indices, got '
                             f'{target.dtype}: pass labels.long()')
        if target.shape != pred.shape[:-1]:
            raise ValueError(f'labels of shape {tuple(target.shape)} do not match '
                             f'predictions of shape {tuple(pred.shape)}')
        return True
    if target.shape != pred.shape:
        raise ValueError(f'targets of shape {tuple(target.shape)} must be integer labels of '
                         f'shape {tuple(pred.shape[:-1])} or match predictions of shape '
                         f'{tuple(pred.shape)}')
    if not target.is_floating_point():
        raise ValueError(f'targets of the predictions\' shape {tuple(pred.shape)} are one-hot '
                         f'or soft probabilities and must be floating point, got '
                         f'{target.dtype}: pass target.float(), or integer labels of shape '
                         f'{tuple(pred.shape[:-1])}')
    return False


def check_target_values(pred: Tensor, target: Tensor, weight: Optional[Tensor]) -> None:
    """Labels in ``[0, C]`` (``C`` = background) wherever the weight is not 0, targets in
    [0, 1] and weights >= 0, as MMDetection's ``FocalLoss`` takes them.

    Raises:
        ValueError: Naming the range and the values found.
    """
    if weight is not None and weight.numel() and bool((weight < 0).any()):
        raise ValueError(f'weights must be >= 0, got values down to {float(weight.min()):g}')
    if not target.numel():
        return
    if target.is_floating_point():
        low, high = torch.aminmax(target)
        if low < 0 or high > 1:
            raise ValueError(f'targets must lie in [0, 1], got values in [{float(low):g}, '
                             f'{float(high):g}]')
        return
    labels = target
    if weight is not None:
        valid = weight.reshape(labels.size(0), -1).ne(0).any(1)
        labels = labels[valid]
    if labels.numel():
        low, high = torch.aminmax(labels)
        num_classes = pred.size(-1)
        if low < 0 or high > num_classes:
            raise ValueError(f'labels must lie in [0, {num_classes}] ({num_classes} is '
                             f'background; an ignored anchor takes weight 0), got values in '
                             f'[{int(low)}, {int(high)}]')


def check_positions(pred: Tensor, pos_inds: Tensor, pos_labels: Tensor) -> None:
    """``pos_inds`` rows of ``pred`` ``(N, C)`` and ``pos_labels`` classes in ``[0, C)``, one
    label per row, as ``gaussian_focal_loss_with_pos_inds`` indexes ``pred[pos_inds]`` and
    gathers ``pos_labels`` (``CenterNetUpdateHead``'s form).

    A negative index is refused rather than read from the end (``pos_labels = -1`` would score
    the last class), as out-of-range labels are refused by the dense losses.

    Raises:
        ValueError: Naming the argument, its range and the values found.
    """
    if pred.dim() != 2:
        raise ValueError(f'pos_inds index the rows of predictions of shape (N, C), got '
                         f'{tuple(pred.shape)}: flatten the heatmap or drop pos_inds')
    for name, index in (('pos_inds', pos_inds), ('pos_labels', pos_labels)):
        if not isinstance(index, Tensor) or index.dtype not in LABEL_DTYPES or index.dim() != 1:
            raise ValueError(f'{name} must be a 1-d int64 (or int32) tensor of indices, got '
                             f'{getattr(index, "dtype", type(index).__name__)} of shape '
                             f'{tuple(getattr(index, "shape", ()))}')
    if pos_inds.numel() != pos_labels.numel():
        raise ValueError(f'{pos_inds.numel()} pos_inds but {pos_labels.numel()} pos_labels: '
                         'give one class per positive row')
    for name, index, size, what in (('pos_inds', pos_inds, pred.size(0), 'rows'),
                                    ('pos_labels', pos_labels, pred.size(1), 'classes')):
        if index.numel():
            low, high = torch.aminmax(index)
            if low < 0 or high >= size:
                raise ValueError(f'{name} must lie in [0, {size - 1}] (the predictions have '
                                 f'{size} {what}), got values in [{int(low)}, {int(high)}]')


def labels_to_targets(pred: Tensor, target: Tensor) -> Tensor:
    """Float targets of ``pred``'s shape from integer labels or soft targets.

    Integer labels ``(N,)`` take values in ``[0, C]`` with ``C = pred.size(-1)`` meaning
    background (MMDetection's convention), so a background anchor gets an all-zero row; the
    comparison against ``arange(C)`` builds ``(N, C)`` directly, never an ``(N, C + 1)``
    one-hot. Float targets of ``pred``'s shape (one-hot or soft) pass through.

    Args:
        pred: Logits or probabilities, shape ``(N, C)``.
        target: Labels ``(N,)`` (integer dtype) or targets ``(N, C)``.

    Returns:
        Targets ``(N, C)`` in ``pred``'s floating dtype.

    Raises:
        ValueError: If the shapes do not match either form.
    """
    if check_label_shape(pred, target):
        classes = torch.arange(pred.size(-1), device=pred.device)
        return (target.unsqueeze(-1) == classes).to(pred.dtype)
    return target.to(pred.dtype)


def as_float32(tensor: Tensor) -> Tensor:
    """Upcast half types to float32 for the loss maths; float32 and float64 pass through."""
    return tensor if tensor.dtype in (torch.float32, torch.float64) else tensor.float()


def broadcast_anchor_weight(weight: Optional[Tensor], loss: Tensor) -> Optional[Tensor]:
    """Shape an anchor weight for an ``(N, C)`` loss as MMDetection's ``FocalLoss`` does.

    ``(N,)`` becomes ``(N, 1)``; a flattened per-anchor-per-class ``(N * C,)`` (FSAF) becomes
    ``(N, C)``; a weight of the loss's shape is used as is.

    Raises:
        ValueError: If the weight fits neither the anchors nor the loss.
    """
    if weight is None or weight.shape == loss.shape:
        return weight
    if weight.numel() == loss.size(0):
        return weight.view(-1, 1)
    if weight.numel() == loss.numel():
        return weight.view(loss.size(0), -1)
    raise ValueError(f'weight of shape {tuple(weight.shape)} fits neither the anchors '
                     f'({loss.size(0)}) nor the loss of shape {tuple(loss.shape)}')


def check_avg_factor(reduction: str, avg_factor: AvgFactor) -> None:
    """Raise ``ValueError`` for ``avg_factor`` with ``reduction='sum'``, as MMDetection does."""
    if reduction == 'sum' and avg_factor is not None:
        raise ValueError('avg_factor can not be used with reduction="sum"')


def reduction_divisor(numel: int, reduction: str,
                      avg_factor: AvgFactor) -> Optional[Union[float, Tensor]]:
    """What the summed loss is divided by, as in ``weight_reduce_loss``; None: no reduction.

    ``'sum'``: 1; ``'mean'``: ``avg_factor + eps`` (float32 eps, MMDetection's guard against
    ``avg_factor = 0``) or the number of elements (1 for an empty loss, whose mean is then 0,
    not NaN); ``'none'``: None (``avg_factor`` is ignored, as in MMDetection).

    Raises:
        ValueError: For ``avg_factor`` with ``reduction='sum'``.
    """
    if reduction == 'none':
        return None
    check_avg_factor(reduction, avg_factor)
    if avg_factor is not None:
        return avg_factor + torch.finfo(torch.float32).eps
    return max(numel, 1) if reduction == 'mean' else 1


def reduce_loss(loss: Tensor, weight: Optional[Tensor], reduction: str,
                avg_factor: AvgFactor) -> Tensor:
    """``weight_reduce_loss``, except that the mean over zero elements is 0, not NaN."""
    if loss.numel() == 0 and reduction == 'mean' and avg_factor is None:
        return loss.sum()
    if weight is not None:
        weight = weight.to(loss.dtype)
    return weight_reduce_loss(loss, weight, reduction, avg_factor)


def check_finite(value: float, name: str) -> float:
    """Return ``value`` if it is a finite real number (not a bool), else raise.

    The base of every hyper-parameter check below: NaN fails every comparison and so passes
    any range check written as ``if value < low: raise``; inf passes ``value >= 0``.

    Raises:
        ValueError: Naming ``name`` and the value.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f'{name} must be a real number, got {value!r}')
    if not math.isfinite(value):
        raise ValueError(f'{name} must be finite, got {value}')
    return value


def check_non_negative(value: float, name: str) -> float:
    """Return ``value`` if it is finite and ``>= 0`` (weights, scales, exponents), else raise.

    Raises:
        ValueError: Naming ``name`` and the value.
    """
    if check_finite(value, name) < 0:
        raise ValueError(f'{name} must be >= 0, got {value}')
    return value


def check_positive(value: float, name: str) -> float:
    """Return ``value`` if it is finite and ``> 0`` (divisors, upper bounds), else raise.

    Raises:
        ValueError: Naming ``name`` and the value.
    """
    if check_finite(value, name) <= 0:
        raise ValueError(f'{name} must be > 0, got {value}')
    return value


def check_probability(value: float, name: str) -> float:
    """Return ``value`` if it lies in ``[0, 1)`` (the effective-number ``beta``), else raise.

    Raises:
        ValueError: Naming ``name`` and the value.
    """
    if not 0 <= check_finite(value, name) < 1:
        raise ValueError(f'{name} must be in [0, 1), got {value}')
    return value


def check_fraction(value: float, name: str) -> float:
    """Return ``value`` if it lies in ``[0, 1]`` (a share, a mixing weight), else raise.

    Raises:
        ValueError: Naming ``name`` and the value.
    """
    if not 0 <= check_finite(value, name) <= 1:
        raise ValueError(f'{name} must be in [0, 1], got {value}')
    return value


def check_alpha(value: float, name: str = 'alpha') -> float:
    """Return focal loss's ``alpha`` if it is in ``[0, 1]`` or negative (``alpha_t`` off).

    ``alpha_t = alpha t + (1 - alpha)(1 - t)``: above 1 the negatives' weight ``1 - alpha`` is
    negative, and so is their loss.

    Raises:
        ValueError: Naming ``name`` and the value.
    """
    if check_finite(value, name) > 1:
        raise ValueError(f'{name} must be in [0, 1] (or negative to disable alpha_t), got '
                         f'{value}: the negatives are weighted by 1 - {name}')
    return value


def check_count(value: int, name: str, minimum: int = 0) -> int:
    """Return ``value`` if it is an integer ``>= minimum`` (iterations, classes), else raise.

    Raises:
        ValueError: Naming ``name`` and the value.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f'{name} must be an integer >= {minimum}, got {value!r}')
    return value


def check_gamma(gamma: float, name: str = 'gamma') -> float:
    """Return a focusing parameter whose modulating factor has a finite derivative, else raise.

    ``d(1 - p_t)^gamma / dp_t`` is unbounded at ``p_t = 1`` when ``0 < gamma < 1``; a saturated
    logit (``|x|`` around 17 or more in float32 makes ``p_t`` exactly 1) then turns the
    gradient into NaN. ``gamma = 0`` (no focusing) and finite ``gamma >= 1`` stay finite
    everywhere.

    Raises:
        ValueError: If ``gamma`` is not finite, ``gamma < 0`` or ``0 < gamma < 1``.
    """
    if check_finite(gamma, name) < 0 or 0 < gamma < 1:
        raise ValueError(f'{name} must be 0 or at least 1, got {gamma}: for 0 < {name} < 1 the '
                         f'derivative of (1 - p_t)^{name} is infinite at p_t = 1, so saturated '
                         'logits give NaN gradients')
    return gamma


def check_loaded_state(value: object, key: str, what: str, integral: bool = False) -> None:
    """Refuse a checkpoint's buffer as strictly as the loss refuses the state it computes.

    Loss modules call it from ``_load_from_state_dict`` (where ``ClassCountsMixin`` validates
    checkpoint counts), so ``load_state_dict``, MMEngine's ``load_checkpoint`` and
    ``Runner.resume`` all refuse a corrupt checkpoint instead of training on from NaN or a
    negative statistic. An absent key (None) passes: missing keys are the loader's to report.

    Args:
        value: The checkpoint's entry, or None.
        key: Its full key in the state dict (named in the message).
        what: What it holds, e.g. ``'gradient statistics'``.
        integral: Whether the entries must be whole numbers (an iteration). Defaults to False.

    Raises:
        ValueError: For a non-tensor, or entries that are NaN, infinite, negative (or not
            whole where ``integral``), naming the key and the first offending entries.
    """
    if value is None:
        return
    if not isinstance(value, Tensor) or value.dtype == torch.bool or value.is_complex():
        raise ValueError(f'{key} in the checkpoint must be a real tensor of {what}, got '
                         f'{getattr(value, "dtype", type(value).__name__)}: the checkpoint is '
                         'corrupt; resume from another one')
    flat = value.detach().reshape(-1)
    bad = flat < 0
    if flat.is_floating_point():
        bad |= ~torch.isfinite(flat)
        if integral:
            bad |= torch.isfinite(flat) & (flat != flat.round())
    if bool(bad.any()):
        index = bad.nonzero().flatten()[:5].tolist()
        kind = 'whole numbers >= 0' if integral else 'finite and >= 0'
        shown = ', '.join(f'{v:g}' for v in flat[index].tolist())
        raise ValueError(f'{key} in the checkpoint holds {int(bad.sum())} invalid {what} '
                         f'(entries {index}: {shown}); {what} must be {kind}. The checkpoint is '
                         'corrupt: resume from another one')


def check_sigmoid(use_sigmoid: bool, loss_name: str) -> None:
    """Raise a clear error for ``use_sigmoid=False``: these losses are one-vs-all only."""
    if not use_sigmoid:
        raise ValueError(f'{loss_name} is defined for sigmoid (one-vs-all) heads only: set '
                         'use_sigmoid=True (a softmax head needs a softmax loss)')


class _ReducedLoss(nn.Module):
    """``reduction`` and ``loss_weight``, the arguments every loss module takes last."""

    def __init__(self, reduction: str = 'mean', loss_weight: float = 1.0) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.loss_weight = check_non_negative(loss_weight, 'loss_weight')


class ClassificationLoss(_ReducedLoss):
    """MMDetection's dense classification-loss contract; subclasses implement :meth:`loss`.

    Args:
        reduction: ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        loss_weight: Multiplier applied to the reduced loss, last; finite, ``>= 0``.
            Defaults to 1.
    """

    def loss(self, pred: Tensor, target: Tensor, weight: Optional[Tensor], reduction: str,
             avg_factor: AvgFactor) -> Tensor:
        """The loss before ``loss_weight``, with autocast disabled."""
        raise NotImplementedError

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: AvgFactor = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Compute the loss.

        Args:
            pred: Logits ``(N, C)``.
            target: Integer labels ``(N,)`` with background ``= C``, or targets ``(N, C)``.
            weight: Per-anchor ``(N,)`` or per-element ``(N, C)`` / ``(N * C,)`` weights.
                Defaults to None.
            avg_factor: Divisor of the summed loss for ``reduction='mean'``. Defaults to None.
            reduction_override: Replaces ``self.reduction`` for this call. Defaults to None.

        Returns:
            The loss times ``loss_weight``: float32 (float64 for float64 input).
        """
        reduction = resolve_reduction(self.reduction, reduction_override)
        with no_autocast(pred):
            loss = self.loss(pred, target, weight, reduction, avg_factor)
        return self.loss_weight * loss


class HeatmapLoss(_ReducedLoss):
    """MMDetection's ``GaussianFocalLoss`` contract (CenterNet heatmaps).

    ``pred`` holds probabilities after sigmoid with classes on dim 1 (``(B, C, H, W)``), or
    ``(N, C)`` rows with ``pos_inds``; ``target`` is the Gaussian heatmap of ``pred``'s shape
    (peaks where it equals 1); ``avg_factor`` is the number of peaks. Subclasses implement
    :meth:`loss`, which receives both in float32 (float64 stays float64).

    Args:
        reduction: ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        loss_weight: Multiplier applied to the reduced loss, last; finite, ``>= 0``.
            Defaults to 1.
    """

    def loss(self, pred: Tensor, target: Tensor, pos_inds: Optional[Tensor],
             pos_labels: Optional[Tensor], weight: Optional[Tensor], reduction: str,
             avg_factor: AvgFactor) -> Tensor:
        """The loss before ``loss_weight``, with autocast disabled."""
        raise NotImplementedError

    def forward(self,
                pred: Tensor,
                target: Tensor,
                pos_inds: Optional[Tensor] = None,
                pos_labels: Optional[Tensor] = None,
                weight: Optional[Tensor] = None,
                avg_factor: AvgFactor = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Compute the loss.

        Args:
            pred: Probabilities, classes on dim 1: ``(B, C, H, W)``, or ``(N, C)`` with
                ``pos_inds``.
            target: Gaussian targets of ``pred``'s shape.
            pos_inds: Rows of ``pred`` that are positives, in ``[0, N)`` (peaks are then not
                read from ``target``); requires ``pos_labels``. Defaults to None.
            pos_labels: Class of each positive, shape ``(M,)``, in ``[0, C)``; requires
                ``pos_inds``. Defaults to None.
            weight: Element-wise weight, broadcastable to ``pred`` (not with ``pos_inds``).
                Defaults to None.
            avg_factor: Divisor of the summed loss for ``reduction='mean'``. Defaults to None.
            reduction_override: Replaces ``self.reduction`` for this call. Defaults to None.

        Returns:
            The loss times ``loss_weight``: float32 (float64 for float64 input).

        Raises:
            ValueError: For mismatched shapes, ``pos_inds`` without ``pos_labels`` (or the
                reverse), or positions outside ``pred`` (:func:`check_positions`).
        """
        reduction = resolve_reduction(self.reduction, reduction_override)
        if pred.dim() < 2 or target.shape != pred.shape:
            raise ValueError(f'{type(self).__name__} expects predictions with classes on dim '
                             f'1 and targets of the same shape, got {tuple(pred.shape)} and '
                             f'{tuple(target.shape)}')
        if (pos_inds is None) != (pos_labels is None):
            raise ValueError('pos_inds and pos_labels go together: give both (the positives '
                             'by row and class) or neither (the peaks are where target == 1)')
        if pos_inds is not None:
            check_positions(pred, pos_inds, pos_labels)
        if pos_inds is not None and weight is not None:
            raise ValueError('weight is not supported together with pos_inds (MMDetection '
                             'ignores it there)')
        with no_autocast(pred):
            loss = self.loss(as_float32(pred), as_float32(target), pos_inds, pos_labels,
                             weight, reduction, avg_factor)
        return self.loss_weight * loss
