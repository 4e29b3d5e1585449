"""Class-imbalance classification losses, registered in ``mmdet.registry.MODELS``.

Layers, each importing only the ones below it: the loss modules (one file per loss) -> the
focal family (:mod:`.focal_family`: parameters, reference maths, the one entry) and the
MMDetection contract (:mod:`.contract`) -> the fast paths (:mod:`.fast`: dispatch, then the
fused Functions) -> the Triton kernels (:mod:`imbfocal.kernels`).
"""
from . import kernel_checks  # noqa: F401  (registers the kernels' self-checks)
from .adaptive_focal_loss import AdaptiveFocalLoss, GaussianAdaptiveFocalLoss
from .adaptive_gradient import adaptive_gradient_function
from .class_balanced_focal_loss import (
                                        ClassBalancedFocalLoss,
                                        GaussianClassBalancedFocalLoss,
                                        class_balanced_weights,
)
from .contract import ClassificationLoss, HeatmapLoss
from .dual_focal_loss import DualFocalLoss
from .equalized_focal_loss import EqualizedFocalLoss
from .fast import set_impl, use_chunk_workers, use_impl
from .focal_family import FocalFamilyLoss, FocalTerms, focal_family_loss, focal_family_reference
from .parameter_free_loss import (
                                        GaussianParameterFreeLoss,
                                        ParameterFreeLoss,
                                        gaussian_parameter_free_loss,
                                        parameter_free_loss,
                                        softmax_parameter_free_loss,
)

__all__ = [
    'AdaptiveFocalLoss', 'ClassBalancedFocalLoss', 'DualFocalLoss', 'EqualizedFocalLoss',
    'ParameterFreeLoss', 'GaussianAdaptiveFocalLoss', 'GaussianClassBalancedFocalLoss',
    'GaussianParameterFreeLoss', 'ClassificationLoss', 'HeatmapLoss', 'FocalFamilyLoss',
    'FocalTerms', 'adaptive_gradient_function', 'class_balanced_weights', 'focal_family_loss',
    'focal_family_reference', 'parameter_free_loss', 'softmax_parameter_free_loss',
    'gaussian_parameter_free_loss', 'set_impl', 'use_chunk_workers', 'use_impl'
]
