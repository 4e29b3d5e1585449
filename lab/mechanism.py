"""Where the classification gradient goes, per frequency group, iteration by iteration.

:class:`GradientGroupsHook` watches the head's classification loss: for every training
iteration it records the L2 norm of ``dL/dx`` (the gradient of the whole training loss with
respect to the classification logits, as back-propagated) over the positive elements
(``(i, y_i)``) and over the negative elements (``(i, c)``, ``c != y_i``) of the classes of
each frequency group (LVIS's rule on training images: rare <= 10, common <= 100, frequent
above), and the number of positives of each group. One JSON line per iteration goes to
``<work_dir>/gradient_groups.jsonl``; ``lab.benchmark_page`` plots them.
"""
import json
import os.path as osp
from typing import Dict, List, Optional

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import Tensor

from imbfocal.class_counts import counts_from_dataset
from imbfocal.evaluation.frequency import frequency_group

GROUPS = ('r', 'c', 'f')


def group_gradient_norms(grad: Tensor, labels: Tensor, weight: Optional[Tensor],
                         groups: Tensor) -> Dict[str, float]:
    """The norms of ``grad`` over each group's positive and negative elements.

    Args:
        grad: ``dL/dx`` of shape ``(N, C)``.
        labels: Labels ``(N,)`` in ``[0, C]``, background ``C``.
        weight: Anchor weights ``(N,)`` or None; anchors of weight 0 are left out.
        groups: ``(C,)`` group index of each class (0 rare, 1 common, 2 frequent).

    Returns:
        ``{'pos_r': .., 'neg_r': .., 'npos_r': .., ...}`` for the three groups.
    """
    num_classes = grad.size(1)
    valid = torch.ones_like(labels, dtype=torch.bool) if weight is None else weight.reshape(
        labels.size(0), -1)[:, 0] > 0
    grad, labels = grad[valid].float(), labels[valid]
    positive = torch.zeros_like(grad, dtype=torch.bool)
    fg = labels < num_classes
    positive[fg.nonzero(as_tuple=True)[0], labels[fg]] = True
    squared = grad.square()
    pos_sq = (squared * positive).sum(0)
    neg_sq = (squared * ~positive).sum(0)
    npos = positive.sum(0)
    out = {}
    for index, name in enumerate(GROUPS):
        member = groups == index
        out[f'pos_{name}'] = float(pos_sq[member].sum().sqrt())
        out[f'neg_{name}'] = float(neg_sq[member].sum().sqrt())
        out[f'npos_{name}'] = int(npos[member].sum())
    return out


@HOOKS.register_module()
class GradientGroupsHook(Hook):
    """Record per-group gradient norms of the classification logits every iteration.

    Args:
        loss: Attribute path of the classification loss module in the model.
            Defaults to ``'bbox_head.loss_cls'``.
        filename: File in the work dir. Defaults to ``'gradient_groups.jsonl'``.
    """

    priority = 'LOW'

    def __init__(self, loss: str = 'bbox_head.loss_cls',
                 filename: str = 'gradient_groups.jsonl') -> None:
        self.loss = loss
        self.filename = filename
        self.records: List[dict] = []
        self._pending: Optional[dict] = None

    def before_train(self, runner) -> None:
        counts, _ = counts_from_dataset(runner.train_dataloader.dataset, 'images')
        self.groups = torch.tensor([GROUPS.index(frequency_group(n)) for n in counts])
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        module = model
        for part in self.loss.split('.'):
            module = getattr(module, part)
        module.register_forward_pre_hook(self._watch, with_kwargs=True)
        self.path = osp.join(runner.work_dir, self.filename)
        open(self.path, 'w', encoding='utf-8').close()

    def _watch(self, module, args, kwargs) -> None:
        if not module.training or not args[0].requires_grad:
            return
        pred, target = args[0], args[1]
        weight = args[2] if len(args) > 2 else kwargs.get('weight')
        if target.is_floating_point():
            raise ValueError('GradientGroupsHook reads integer labels; this loss got targets')

        def record(grad: Tensor) -> None:
            self._pending = group_gradient_norms(grad.detach(), target.detach(),
                                                 None if weight is None else weight.detach(),
                                                 self.groups.to(grad.device))

        pred.register_hook(record)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._pending is None:
            return
        with open(self.path, 'a', encoding='utf-8') as f:
            f.write(json.dumps(dict(iter=runner.iter, **self._pending)) + '\n')
        self._pending = None
