"""CenterNet head with a configurable prior for the heatmap bias.

MMDetection's :meth:`CenterNetHead.init_weights` hard-codes the heatmap bias to the prior
``pi = 0.1`` (``bias_init_with_prob(0.1)``) and ignores ``init_cfg``. The focal-loss papers
(and every other detector shipped with imbfocal) start from ``pi = 0.01``:
``b = -log((1 - pi) / pi)``, so that the many background locations do not dominate the first
iterations. :class:`CenterNetPriorHead` takes the prior as an argument.
"""
from typing import List, Optional

from mmdet.models.dense_heads import CenterNetHead
from mmdet.registry import MODELS
from mmdet.utils import InstanceList
from mmengine.model import bias_init_with_prob
from torch import Tensor

from ..registry import register


@register(MODELS)
class CenterNetPriorHead(CenterNetHead):
    """:class:`~mmdet.models.dense_heads.CenterNetHead` with ``prior_prob`` for the heatmap bias.

    The bias of the last heatmap convolution is set to ``-log((1 - prior_prob) / prior_prob)``
    at the end of :meth:`init_weights`, after MMDetection's own initialisation (which would
    otherwise leave it at the prior 0.1). MMEngine's runner calls ``init_weights`` before it
    loads a checkpoint (``Runner.train``: ``_init_model_weights()`` then ``load_or_resume()``;
    ``val``/``test`` only load), so a resumed or fine-tuned bias is never overwritten.

    Images without a ``border`` entry in their meta information (pipelines other than
    CenterNet's ``RandomCenterCropPad``, e.g. a plain ``Resize`` with the batch padded
    bottom-right by the data preprocessor) are decoded with a zero border instead of failing.

    Args:
        prior_prob: Prior probability of a heatmap peak at initialisation. Defaults to 0.01.
        **kwargs: Arguments of :class:`~mmdet.models.dense_heads.CenterNetHead`.
    """

    def __init__(self, *args, prior_prob: float = 0.01, **kwargs) -> None:
        if not 0.0 < prior_prob < 1.0:
            raise ValueError(f'prior_prob must be in (0, 1), got {prior_prob}.')
        super().__init__(*args, **kwargs)
        self.prior_prob = prior_prob

    def init_weights(self) -> None:
        """Initialise as MMDetection does, then set the heatmap bias from ``prior_prob``."""
        super().init_weights()
        self.heatmap_head[-1].bias.data.fill_(bias_init_with_prob(self.prior_prob))

    def predict_by_feat(self,
                        center_heatmap_preds: List[Tensor],
                        wh_preds: List[Tensor],
                        offset_preds: List[Tensor],
                        batch_img_metas: Optional[List[dict]] = None,
                        rescale: bool = True,
                        with_nms: bool = False) -> InstanceList:
        """Decode boxes as MMDetection does, with a zero ``border`` where the meta has none.

        Args:
            center_heatmap_preds: Heatmaps, one level, (B, num_classes, H, W).
            wh_preds: Box sizes, one level, (B, 2, H, W).
            offset_preds: Centre offsets, one level, (B, 2, H, W).
            batch_img_metas: Meta information of each image.
            rescale: Whether to map boxes back to the original image size. Defaults to True.
            with_nms: Whether to run NMS. Defaults to False.

        Returns:
            list[InstanceData]: Detections of each image.
        """
        if batch_img_metas is not None:
            batch_img_metas = [{'border': (0, 0, 0, 0), **meta} for meta in batch_img_metas]
        return super().predict_by_feat(center_heatmap_preds, wh_preds, offset_preds,
                                       batch_img_metas, rescale, with_nms)
