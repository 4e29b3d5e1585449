"""Sums over ``torch.distributed`` processes for the losses that keep batch statistics."""
import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    """Whether a torch.distributed process group with more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """The number of torch.distributed processes; 1 without a process group."""
    return dist.get_world_size() if is_distributed() else 1


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
