"""Class-imbalance classification losses, registered in ``mmdet.registry.MODELS``."""
from .dual_focal_loss import DualFocalLoss  # noqa: F401
from .equalized_focal_loss import EqualizedFocalLoss  # noqa: F401
from .parameter_free_loss import (GaussianParameterFreeLoss, ParameterFreeLoss,  # noqa: F401
                                  gaussian_parameter_free_loss, parameter_free_loss,
                                  softmax_parameter_free_loss)
from .adaptive_focal_loss import (AdaptiveFocalLoss, GaussianAdaptiveFocalLoss,  # noqa: F401
                                  adaptive_gradient_function)
from .class_balanced_focal_loss import (ClassBalancedFocalLoss,  # noqa: F401
                                        GaussianClassBalancedFocalLoss,
                                        class_balanced_focal_loss, class_balanced_weights,
                                        gaussian_class_balanced_focal_loss)
