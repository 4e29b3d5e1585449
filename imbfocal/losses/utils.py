"""Helpers shared by every loss family: MMDetection's loss contract and distributed sums.

The contract (``forward(pred, target, weight=None, avg_factor=None, reduction_override=None)``,
labels with background ``= C``, float32 maths under autocast, ``loss_weight`` last) is
implemented once, in :class:`imbfocal.losses.base.ElementwiseSigmoidLoss`, from the pieces
here; the batch-statistic and heatmap losses use the pieces that fit them.
"""
from typing import Optional, Union

import torch
import torch.distributed as dist
from mmdet.models.losses.utils import weight_reduce_loss
from torch import Tensor

REDUCTIONS = ('none', 'mean', 'sum')
AvgFactor = Optional[Union[int, float, Tensor]]


def check_label_shape(pred: Tensor, target: Tensor) -> bool:
    """Whether ``target`` holds integer labels ``(N,)`` for ``pred`` ``(N, C)``, else targets.

    Raises:
        ValueError: If ``target`` is neither labels nor targets of ``pred``'s shape.
    """
    if target.dim() == pred.dim() - 1 and not target.is_floating_point():
        if target.shape != pred.shape[:-1]:
            raise ValueError(f'labels of shape {tuple(target.shape)} do not match '
                             f'predictions of shape {tuple(pred.shape)}')
        return True
    if target.shape != pred.shape:
        raise ValueError(f'targets of shape {tuple(target.shape)} must be integer labels of '
                         f'shape {tuple(pred.shape[:-1])} or match predictions of shape '
                         f'{tuple(pred.shape)}')
    return False


def labels_to_targets(pred: Tensor, target: Tensor) -> Tensor:
    """Return float targets of ``pred``'s shape from integer labels or soft targets.

    Integer labels ``(N,)`` take values in ``[0, C]`` with ``C = pred.size(-1)`` meaning
    background (MMDetection's convention), so a background anchor gets an all-zero row. The
    comparison against ``arange(C)`` builds the ``(N, C)`` targets directly, never an
    ``(N, C + 1)`` one-hot. Float targets of ``pred``'s shape (one-hot or soft) pass through.

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


def broadcast_anchor_weight(weight: Optional[Tensor], loss: Tensor) -> Optional[Tensor]:
    """Shape an anchor weight for an ``(N, C)`` loss as MMDetection's ``FocalLoss`` does.

    ``(N,)`` becomes ``(N, 1)``; a flattened per-anchor-per-class ``(N * C,)`` (FSAF) becomes
    ``(N, C)``; a weight of the loss's shape is used as is.
    """
    if weight is None or weight.shape == loss.shape:
        return weight
    if weight.numel() == loss.size(0):
        return weight.view(-1, 1)
    if weight.numel() == loss.numel():
        return weight.view(loss.size(0), -1)
    raise ValueError(f'weight of shape {tuple(weight.shape)} fits neither the anchors '
                     f'({loss.size(0)}) nor the loss of shape {tuple(loss.shape)}')


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
    if avg_factor is not None:
        if reduction == 'sum':
            raise ValueError('avg_factor can not be used with reduction="sum"')
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


def check_gamma(gamma: float, name: str = 'gamma') -> None:
    """Reject focusing parameters whose modulating factor has an infinite derivative.

    ``d(1 - p_t)^gamma / dp_t`` is unbounded at ``p_t = 1`` when ``0 < gamma < 1``; a saturated
    logit (``|x|`` around 17 or more in float32 makes ``p_t`` exactly 1) then turns the
    gradient into NaN. ``gamma = 0`` (no focusing) and ``gamma >= 1`` stay finite everywhere.

    Raises:
        ValueError: If ``gamma < 0`` or ``0 < gamma < 1``.
    """
    if gamma < 0 or 0 < gamma < 1:
        raise ValueError(f'{name} must be 0 or at least 1, got {gamma}: for 0 < {name} < 1 the '
                         f'derivative of (1 - p_t)^{name} is infinite at p_t = 1, so saturated '
                         'logits give NaN gradients')


def check_sigmoid(use_sigmoid: bool, loss_name: str) -> None:
    """Raise a clear error for ``use_sigmoid=False``: these losses are one-vs-all only."""
    if not use_sigmoid:
        raise ValueError(f'{loss_name} is defined for sigmoid (one-vs-all) heads only: set '
                         'use_sigmoid=True (a softmax head needs a softmax loss)')


def is_distributed() -> bool:
    """Whether a torch.distributed process group with more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes whose backward also sums the incoming gradients.

    Every process computes the same loss from the global sum, and DDP averages parameter
    gradients over the ``W`` processes; summing the gradient here makes that average equal
    the single-process gradient on the concatenated batch.
    """

    @staticmethod
    def forward(ctx, tensor: Tensor) -> Tensor:
        tensor = tensor.clone()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:
        grad_output = grad_output.clone()
        dist.all_reduce(grad_output, op=dist.ReduceOp.SUM)
        return grad_output


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """Sum ``tensor`` over all processes, differentiably; the identity without DDP."""
    if not is_distributed():
        return tensor
    return _AllReduceSum.apply(tensor)
