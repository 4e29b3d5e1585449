"""Helpers shared by every loss family: targets from labels, and distributed reductions."""
import torch
import torch.distributed as dist
from torch import Tensor


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
    if target.dim() == pred.dim() - 1 and not target.is_floating_point():
        if target.shape != pred.shape[:-1]:
            raise ValueError(f'labels of shape {tuple(target.shape)} do not match '
                             f'predictions of shape {tuple(pred.shape)}')
        classes = torch.arange(pred.size(-1), device=pred.device)
        return (target.unsqueeze(-1) == classes).to(pred.dtype)
    if target.shape != pred.shape:
        raise ValueError(f'targets of shape {tuple(target.shape)} must be integer labels of '
                         f'shape {tuple(pred.shape[:-1])} or match predictions of shape '
                         f'{tuple(pred.shape)}')
    return target.to(pred.dtype)


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
