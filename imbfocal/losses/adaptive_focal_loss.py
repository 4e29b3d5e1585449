"""Adaptive Focal Loss (AFL): class-balanced focal loss through an Adaptive Gradient Function.

Su, Adam and Nasrudin, "Adaptive Focal Loss for Keypoint-Based Deep Learning Detectors
Addressing Class Imbalance", IEEE Access 13, 2025, https://ieeexplore.ieee.org/document/10872927/.

Only the paper's abstract was available to this project. It says AFL "combines the strengths of
Focal Loss and Class-Balanced Loss while introducing an Adaptive Gradient Function ... designed
to mitigate the impact of large gradients during the early stages of training". The formula
implemented here is this project's reconstruction from that sentence, NOT the authors'
published formula:

    A_s(L) = log(1 + lam_s * L) / lam_s,    lam_s = lam0 * (1 - s),    s = min(1, iter / agf_iters)

applied element-wise to the class-balanced focal loss ``L`` (``A_s`` is the identity when
``lam_s = 0``). ``dA_s/dL = 1 / (1 + lam_s * L)`` damps the largest per-element losses (the
hardest, and through ``w_c`` the rarest) early in training and fades to 1 as ``s`` reaches 1.
"""
from typing import Optional

import torch
from mmdet.registry import MODELS
from mmengine.logging import MessageHub
from torch import Tensor

from ..class_counts import ClassCountsSource
from ..registry import register
from .class_balanced_focal_loss import ClassBalancedFocalLoss, GaussianClassBalancedFocalLoss
from .focal_loss import adaptive_gradient_function

__all__ = [
    'AdaptiveFocalLoss', 'GaussianAdaptiveFocalLoss', 'AdaptiveGradientMixin',
    'adaptive_gradient_function'
]


def _running_train_iter() -> Optional[int]:
    """The runner's iteration while an MMEngine train loop is running, else None.

    ``RuntimeInfoHook`` sets ``loop_stage='train'`` in ``before_train`` (and back after each
    validation) and pops it in ``after_train``, so a message hub left over from a finished run
    does not count.
    """
    hub = MessageHub.get_current_instance()
    if hub.get_info('loop_stage') != 'train':
        return None
    return hub.get_info('iter')


class AdaptiveGradientMixin:
    """Training progress ``s`` and ``lam_s`` of the Adaptive Gradient Function.

    The iteration lives in the int64 buffer ``agf_iter`` (saved with checkpoints). In training
    mode, each forward reads the runner's iteration from MMEngine's ``MessageHub`` while a train
    loop runs; otherwise it uses ``agf_iter`` and then adds 1 to it (so outside a runner the
    counter counts training forward calls). Evaluation-mode forwards leave it alone.
    """

    def init_adaptive_gradient(self, lam0: float, agf_iters: int) -> None:
        if lam0 < 0:
            raise ValueError(f'lam0 must be >= 0, got {lam0}')
        if agf_iters < 0:
            raise ValueError(f'agf_iters must be >= 0, got {agf_iters}')
        self.lam0 = lam0
        self.agf_iters = agf_iters
        self.register_buffer('agf_iter', torch.zeros((), dtype=torch.long))

    def progress(self) -> Tensor:
        """``s = min(1, agf_iter / agf_iters)`` as a float64 scalar tensor (1 if agf_iters=0)."""
        if self.agf_iters == 0:
            return torch.ones((), dtype=torch.float64, device=self.agf_iter.device)
        return (self.agf_iter.double() / self.agf_iters).clamp(max=1)

    def adaptive_lam(self) -> float:
        """``lam_s = lam0 * (1 - s)`` for this forward; in training, advances the progress."""
        runner_iter = _running_train_iter() if self.training else None
        if runner_iter is not None:
            self.agf_iter.fill_(runner_iter)
        lam_s = self.lam0 * (1 - float(self.progress()))
        if self.training and runner_iter is None:
            self.agf_iter += 1
        return lam_s


@register(MODELS)
class AdaptiveFocalLoss(AdaptiveGradientMixin, ClassBalancedFocalLoss):
    """Adaptive Focal Loss, this project's reconstruction from the abstract of Su et al. 2025.

    NOT the authors' published formula (only the abstract was available; see the module
    docstring): ``AFL_ic = A_s(CB_ic)`` with ``CB_ic`` the class-balanced focal loss of
    ``ClassBalancedFocalLoss`` (Cui et al. 2019, https://arxiv.org/abs/1901.05555),
    ``A_s(L) = log(1 + lam_s * L) / lam_s``, ``lam_s = lam0 * (1 - s)``,
    ``s = min(1, iter / agf_iters)``; ``A_s`` is the identity once ``s = 1`` or if ``lam0 = 0``.
    ``A_s`` acts on each element before the anchor ``weight`` and the reduction.
    Paper: https://ieeexplore.ieee.org/document/10872927/.

    ``iter`` is the runner's iteration (MMEngine ``MessageHub``) while a train loop runs; else a
    counter of training-mode forward calls. It is kept in the buffer ``agf_iter`` so it is saved
    with checkpoints and restored on resume.

    Args:
        lam0: Initial damping strength ``lam0 >= 0``.
        agf_iters: Iterations over which ``lam_s`` decays linearly to 0.
        others: As ``ClassBalancedFocalLoss`` (``use_sigmoid``, ``gamma``, ``alpha``, ``beta``,
            ``class_counts``, ``count_type``, ``bg_weight``, ``reduction``, ``loss_weight``).
    """

    def __init__(self,
                 use_sigmoid: bool = True,
                 gamma: float = 2.0,
                 alpha: float = 0.25,
                 beta: float = 0.999,
                 lam0: float = 1.0,
                 agf_iters: int = 1000,
                 class_counts: ClassCountsSource = None,
                 count_type: str = 'instances',
                 bg_weight: float = 1.0,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(use_sigmoid=use_sigmoid, gamma=gamma, alpha=alpha, beta=beta,
                         class_counts=class_counts, count_type=count_type,
                         bg_weight=bg_weight, reduction=reduction, loss_weight=loss_weight)
        self.init_adaptive_gradient(lam0, agf_iters)


@register(MODELS)
class GaussianAdaptiveFocalLoss(AdaptiveGradientMixin, GaussianClassBalancedFocalLoss):
    """Adaptive Focal Loss for CenterNet heatmaps (this project's reconstruction, see above).

    ``A_s`` applied element-wise to ``GaussianClassBalancedFocalLoss``; same inputs as
    MMDetection's ``GaussianFocalLoss``. NOT the authors' published formula (only the abstract
    of Su et al. 2025, https://ieeexplore.ieee.org/document/10872927/, was available).

    Args:
        lam0: Initial damping strength ``lam0 >= 0``.
        agf_iters: Iterations over which ``lam_s`` decays linearly to 0.
        others: As ``GaussianClassBalancedFocalLoss`` (``alpha``, ``gamma``, ``beta``,
            ``class_counts``, ``count_type``, ``reduction``, ``loss_weight``, ``pos_weight``,
            ``neg_weight``).
    """

    def __init__(self,
                 alpha: float = 2.0,
                 gamma: float = 4.0,
                 beta: float = 0.999,
                 lam0: float = 1.0,
                 agf_iters: int = 1000,
                 class_counts: ClassCountsSource = None,
                 count_type: str = 'instances',
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 pos_weight: float = 1.0,
                 neg_weight: float = 1.0) -> None:
        super().__init__(alpha=alpha, gamma=gamma, beta=beta, class_counts=class_counts,
                         count_type=count_type, reduction=reduction, loss_weight=loss_weight,
                         pos_weight=pos_weight, neg_weight=neg_weight)
        self.init_adaptive_gradient(lam0, agf_iters)
