"""A RetinaNet head whose classification loss sees all pyramid levels at once.

MMDetection's :class:`~mmdet.models.dense_heads.AnchorHead` (and so
:class:`~mmdet.models.dense_heads.RetinaHead`) calls ``loss_cls`` once per pyramid level
(``multi_apply(self.loss_by_feat_single, ...)``) and sums the per-level results. For an
element-wise loss normalised by the batch's number of positives this is the same as one call
over all anchors, but a loss built on batch statistics (``ParameterFreeLoss``'s per-class mean
probabilities, ``EqualizedFocalLoss``'s accumulated gradient ratios) would see five separate
mini-batches, one per level, each with a different class mix. :class:`RetinaAllLevelsHead`
concatenates the classification scores, labels and label weights of every level and image and
calls ``loss_cls`` once; the box regression loss is computed per level exactly as MMDetection
does.

FCOS and CenterNet need no such head: ``FCOSHead.loss_by_feat`` already flattens and
concatenates all levels and images before its single ``loss_cls`` call, and CenterNet has a
single output level, whose heatmap loss is one call over the whole batch.
"""
from typing import List, Tuple

import torch
from mmdet.models.dense_heads import RetinaHead
from mmdet.models.utils import images_to_levels, multi_apply
from mmdet.registry import MODELS
from mmdet.structures.bbox import cat_boxes, get_box_tensor
from mmdet.utils import InstanceList, OptInstanceList
from torch import Tensor

from ..registry import register


@register(MODELS)
class RetinaAllLevelsHead(RetinaHead):
    """RetinaNet head computing the classification loss once over all levels and images.

    Takes exactly :class:`~mmdet.models.dense_heads.RetinaHead`'s arguments (and so its
    ``pi = 0.01`` prior initialisation of the classification bias). Anchors, targets and the
    box loss are MMDetection's; only the classification loss changes from a sum of one call per
    pyramid level to one call over the concatenation of all levels, with the same
    ``avg_factor``. For element-wise losses (``FocalLoss``, ``ClassBalancedFocalLoss``, ...)
    the result equals ``RetinaHead``'s up to float summation order; batch-statistic losses
    (``ParameterFreeLoss``, ``EqualizedFocalLoss``) see the whole mini-batch.

    The returned ``loss_cls`` is a single tensor instead of RetinaHead's per-level list (the
    logged value, their sum, is the same for element-wise losses).

    Example:
        >>> model = dict(bbox_head=dict(type='RetinaAllLevelsHead'))  # in a config
    """

    def loss_by_feat(self,
                     cls_scores: List[Tensor],
                     bbox_preds: List[Tensor],
                     batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: OptInstanceList = None) -> dict:
        """Compute the losses from the head's outputs.

        Args:
            cls_scores: Box scores per level, each (N, num_anchors * num_classes, H, W).
            bbox_preds: Box deltas per level, each (N, num_anchors * 4, H, W).
            batch_gt_instances: Ground truth of each image (``bboxes``, ``labels``).
            batch_img_metas: Meta information of each image.
            batch_gt_instances_ignore: Ignored boxes of each image. Defaults to None.

        Returns:
            dict: ``loss_cls`` (one tensor over all levels) and ``loss_bbox`` (list, per level).
        """
        featmap_sizes = [featmap.size()[-2:] for featmap in cls_scores]
        assert len(featmap_sizes) == self.prior_generator.num_levels
        anchor_list, valid_flag_list = self.get_anchors(
            featmap_sizes, batch_img_metas, device=cls_scores[0].device)
        (labels_list, label_weights_list, bbox_targets_list, bbox_weights_list,
         avg_factor) = self.get_targets(
             anchor_list,
             valid_flag_list,
             batch_gt_instances,
             batch_img_metas,
             batch_gt_instances_ignore=batch_gt_instances_ignore)

        # Classification: (N, A*C, H, W) per level -> (N * sum_l H_l*W_l*A, C), image-major
        # like the labels, which get_targets returns per level as (N, num_level_anchors).
        flat_scores = torch.cat([
            score.permute(0, 2, 3, 1).reshape(score.size(0), -1, self.cls_out_channels)
            for score in cls_scores
        ], dim=1).reshape(-1, self.cls_out_channels)
        flat_labels = torch.cat(labels_list, dim=1).reshape(-1)
        flat_label_weights = torch.cat(label_weights_list, dim=1).reshape(-1)
        loss_cls = self.loss_cls(
            flat_scores, flat_labels, flat_label_weights, avg_factor=avg_factor)

        # Regression: per level, as AnchorHead.loss_by_feat does.
        num_level_anchors = [anchors.size(0) for anchors in anchor_list[0]]
        all_anchor_list = images_to_levels(
            [cat_boxes(anchors) for anchors in anchor_list], num_level_anchors)
        losses_bbox, = multi_apply(
            self._loss_bbox_single,
            bbox_preds,
            all_anchor_list,
            bbox_targets_list,
            bbox_weights_list,
            avg_factor=avg_factor)
        return dict(loss_cls=loss_cls, loss_bbox=losses_bbox)

    def _loss_bbox_single(self, bbox_pred: Tensor, anchors: Tensor, bbox_targets: Tensor,
                          bbox_weights: Tensor, avg_factor: int) -> Tuple[Tensor]:
        """Box loss of one level: the regression half of ``AnchorHead.loss_by_feat_single``.

        Args:
            bbox_pred: Box deltas, (N, num_anchors * 4, H, W).
            anchors: Anchors of the level, (N, num_level_anchors, 4).
            bbox_targets: Regression targets, (N, num_level_anchors, 4).
            bbox_weights: Regression weights, (N, num_level_anchors, 4).
            avg_factor: Normaliser (number of positive anchors in the batch).

        Returns:
            tuple[Tensor]: The level's box loss, as a 1-tuple for ``multi_apply``.
        """
        target_dim = bbox_targets.size(-1)
        bbox_targets = bbox_targets.reshape(-1, target_dim)
        bbox_weights = bbox_weights.reshape(-1, target_dim)
        bbox_pred = bbox_pred.permute(0, 2, 3, 1).reshape(-1, self.bbox_coder.encode_size)
        if self.reg_decoded_bbox:
            anchors = anchors.reshape(-1, anchors.size(-1))
            bbox_pred = get_box_tensor(self.bbox_coder.decode(anchors, bbox_pred))
        loss_bbox = self.loss_bbox(bbox_pred, bbox_targets, bbox_weights, avg_factor=avg_factor)
        return (loss_bbox, )
