"""Dual Focal Loss (DFL) for sigmoid (one-vs-all) classification heads.

Hossain, Paplinski and Betts, "Adaptive Class Weight based Dual Focal Loss for Improved Semantic
Segmentation" (only the abstract is public). **This project's reconstruction from that
abstract, not the authors' formula**::

    DFL = [(1 - p_t)^gamma + nu] * l + beta * (1 - t) * log(1 + p / rho)

In terms of the focal family (:mod:`.focal_family`): ``FocalTerms(gamma, alpha=-1, nu, beta,
rho)``.
"""
from mmdet.registry import MODELS

from ..registry import register
from .contract import check_gamma, check_non_negative, check_positive
from .focal_family import FocalFamilyLoss, FocalTerms


@register(MODELS)
class DualFocalLoss(FocalFamilyLoss):
    """Dual Focal Loss for sigmoid heads (project reconstruction of Hossain et al.).

    Paper (abstract): Hossain, Paplinski and Betts, "Adaptive Class Weight based Dual Focal
    Loss for Improved Semantic Segmentation". The abstract describes focal scaling of true and
    false classes with equal importance plus a Dual-Cross-Entropy-style regulariser on false
    classes against vanishing gradients; it gives no formula. This project implements::

        DFL = [(1 - p_t)^gamma + nu] * l + beta * (1 - t) * log(1 + p / rho)

    which is **our reconstruction, not the authors' formula**. In a sigmoid head every class is
    its own binary problem, so ``(1 - p_t)^gamma`` already scales true (``t = 1``) and false
    (``t = 0``) classes alike; ``nu`` keeps a floor of plain cross-entropy; the regulariser
    penalises probability on false classes with a slope ``d/dp = beta / (rho + p)`` that never
    falls below ``beta / (rho + 1)``, so the push on a confident false class does not fade as
    ``p -> 1``. With ``nu = beta = 0`` it is focal loss without ``alpha``.

    The paper's learnable scaling parameter is not offered (docs/design.md says why).

    The defaults (``nu = beta = 0.01``) are scaled for dense heads, where both terms act on
    every background element (``docs/benchmark.md``).

    Args:
        use_sigmoid: Must be True (heads read it from the config); False raises ValueError.
            Defaults to True.
        gamma: Focusing parameter, 0 or at least 1. Defaults to 2.
        nu: Constant added to the modulating factor, ``>= 0`` (below 0 the loss of a
            well-classified element is negative). Defaults to 0.01.
        beta: Weight of the false-class regulariser, ``>= 0``. Defaults to 0.01.
        rho: Scale of the regulariser, positive. Defaults to 1.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        loss_weight: Multiplier applied to the reduced loss. Defaults to 1.

    Raises:
        ValueError: For a hyper-parameter outside its range, NaN or inf, naming it.
    """

    def __init__(self,
                 use_sigmoid: bool = True,
                 gamma: float = 2.0,
                 nu: float = 0.01,
                 beta: float = 0.01,
                 rho: float = 1.0,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(use_sigmoid, reduction, loss_weight)
        self.gamma = check_gamma(gamma)
        self.nu = check_non_negative(nu, 'nu')
        self.beta = check_non_negative(beta, 'beta')
        self.rho = check_positive(rho, 'rho')

    def focal_terms(self, num_classes: int) -> FocalTerms:
        """DFL as a focal-family loss: no ``alpha_t``, ``nu``, ``beta`` and ``rho``."""
        return FocalTerms(gamma=self.gamma, alpha=-1, nu=self.nu, beta=self.beta, rho=self.rho)
