"""Class-imbalance classification losses, registered in ``mmdet.registry.MODELS``.

The package exports the loss classes and a few functions whose names differ from every
submodule's (a function named like its submodule, e.g. ``parameter_free_loss``, would hide the
module ``imbfocal.losses.parameter_free_loss`` behind the package attribute); the other
functions are imported from their submodules.
"""
from .adaptive_focal_loss import AdaptiveFocalLoss, GaussianAdaptiveFocalLoss
from .base import ElementwiseSigmoidLoss
from .class_balanced_focal_loss import (ClassBalancedFocalLoss, GaussianClassBalancedFocalLoss,
                                        class_balanced_weights)
from .dual_focal_loss import DualFocalLoss
from .equalized_focal_loss import EqualizedFocalLoss
from .focal_loss import FocalTerms, adaptive_gradient_function, focal_family_loss
from .fused import fused_focal_loss
from .parameter_free_loss import GaussianParameterFreeLoss, ParameterFreeLoss

__all__ = [
    'AdaptiveFocalLoss', 'ClassBalancedFocalLoss', 'DualFocalLoss', 'EqualizedFocalLoss',
    'ParameterFreeLoss', 'GaussianAdaptiveFocalLoss', 'GaussianClassBalancedFocalLoss',
    'GaussianParameterFreeLoss', 'ElementwiseSigmoidLoss', 'FocalTerms',
    'adaptive_gradient_function', 'class_balanced_weights', 'focal_family_loss',
    'fused_focal_loss'
]
