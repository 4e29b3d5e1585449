"""Reference sigmoid focal loss: the element-wise core the focal-family losses build on.

Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017, https://arxiv.org/abs/1708.02002.
"""
from typing import Union

import torch.nn.functional as F
from torch import Tensor


def sigmoid_focal_loss(pred: Tensor,
                       target: Tensor,
                       gamma: Union[float, Tensor] = 2.0,
                       alpha: float = 0.25) -> Tensor:
    """Element-wise sigmoid focal loss, no reduction.

    ``FL = alpha_t * (1 - p_t) ** gamma * BCE(x, t)`` with ``p = sigmoid(x)``,
    ``p_t = t * p + (1 - t) * (1 - p)``, ``alpha_t = alpha * t + (1 - alpha) * (1 - t)``. The
    cross-entropy uses the stable softplus form, so logits in [-100, 100] stay finite.

    Args:
        pred: Logits ``x`` of shape ``(N, C)``.
        target: Targets ``t`` in [0, 1] of the same shape (see ``labels_to_targets``).
        gamma: Focusing parameter; a float, or a tensor broadcastable to ``(N, C)`` such as
            per-class values of shape ``(C,)``.
        alpha: Weight of the positive term; a negative value disables ``alpha_t``.

    Returns:
        The loss of shape ``(N, C)``.
    """
    p = pred.sigmoid()
    ce = F.binary_cross_entropy_with_logits(pred, target, reduction='none')
    p_t = p * target + (1 - p) * (1 - target)
    loss = ce * (1 - p_t).pow(gamma)
    if alpha >= 0:
        alpha_t = alpha * target + (1 - alpha) * (1 - target)
        loss = alpha_t * loss
    return loss
