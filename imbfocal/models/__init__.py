"""Detection heads, registered in ``mmdet.registry.MODELS``.

- ``RetinaAllLevelsHead``: RetinaNet head computing the classification loss once over all
  pyramid levels and images (needed by batch-statistic losses: PF, EFL).
- ``CenterNetPriorHead``: CenterNet head whose heatmap bias starts from ``prior_prob``
  (0.01 in imbfocal's configs; MMDetection hard-codes 0.1).
"""
from .centernet_prior_head import CenterNetPriorHead
from .retina_all_levels_head import RetinaAllLevelsHead

__all__ = ['CenterNetPriorHead', 'RetinaAllLevelsHead']
