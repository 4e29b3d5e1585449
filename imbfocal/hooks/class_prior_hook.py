"""Start a classification bias from each class's training frequency instead of one prior.

RetinaNet's initialisation (Lin et al., https://arxiv.org/abs/1708.02002, sec. 4.1) sets every
class's bias to ``b = -log((1 - pi) / pi)`` with ``pi = 0.01``. YOLOv5's
``_initialize_biases(cf)`` instead starts class ``c`` from its share of the training
instances, ``b_c = log(n_c / sum n)``. This hook does the latter for sigmoid heads, keeping
the mean prior over the classes at ``prior_prob``::

    pi_c = clip(prior_prob * C * n_c / sum_k n_k, min_prob, max_prob)
    b_c  = -log((1 - pi_c) / pi_c)

so a class with the average number of instances keeps ``pi``, a frequent one starts higher and
a rare one lower (fewer false positives of rare classes in the first iterations, and less of
the negative gradient that a score of ``pi`` draws from every background anchor).
"""
from typing import List, Optional

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper
from torch import nn

from ..class_counts import check_count_type, counts_from_dataset
from ..registry import register


def frequency_prior_bias(counts: List[int], prior_prob: float = 0.01, min_prob: float = 1e-4,
                         max_prob: float = 0.5) -> torch.Tensor:
    """Per-class bias ``b_c = -log((1 - pi_c) / pi_c)`` from class counts (module docstring).

    Args:
        counts: Training instances (or images) per class, in label order; non-negative.
        prior_prob: Mean prior over the classes, ``pi`` of RetinaNet. Defaults to 0.01.
        min_prob: Smallest ``pi_c`` (a class without training instances gets it).
            Defaults to 1e-4.
        max_prob: Largest ``pi_c``. Defaults to 0.5.

    Returns:
        The biases ``(C,)``, float32.

    Raises:
        ValueError: For probabilities outside (0, 1), ``min_prob > max_prob``, negative counts
            or counts that sum to 0.
    """
    for name, value in (('prior_prob', prior_prob), ('min_prob', min_prob),
                        ('max_prob', max_prob)):
        if not 0.0 < value < 1.0:
            raise ValueError(f'{name} must be in (0, 1), got {value}')
    if min_prob > max_prob:
        raise ValueError(f'min_prob ({min_prob}) must not exceed max_prob ({max_prob})')
    n = torch.as_tensor(counts, dtype=torch.float64)
    if n.dim() != 1 or n.numel() == 0 or (n < 0).any() or n.sum() <= 0:
        raise ValueError('counts must be one non-negative count per class with a positive '
                         f'sum, got {list(counts)[:10]}')
    pi_c = (prior_prob * n.numel() * n / n.sum()).clamp(min_prob, max_prob)
    return (pi_c / (1 - pi_c)).log().float()


@register(HOOKS)
class ClassPriorInitHook(Hook):
    """Set a sigmoid classification layer's bias from the training set's class frequencies.

    Add it with ``custom_hooks=[dict(type='ClassPriorInitHook', layer='bbox_head.retina_cls')]``
    (FCOS: ``'bbox_head.conv_cls'``; CenterNet: ``'bbox_head.heatmap_head.2'``). In
    ``before_train`` of a run that starts from scratch it counts the training dataset and sets
    the layer's bias to :func:`frequency_prior_bias`; for a layer with ``A * C`` outputs
    (``A`` anchors per location, MMDetection's anchor-major channel order) every anchor gets the
    same class biases. A resumed run (``resume=True``) or a fine-tuning run (``load_from``)
    keeps the bias it loaded.

    Args:
        layer: Dotted path of the layer in the model (DDP unwrapped).
        prior_prob: Mean prior over the classes. Defaults to 0.01.
        count_type: ``'instances'`` or ``'images'``. Defaults to ``'instances'``.
        min_prob: Smallest per-class prior. Defaults to 1e-4.
        max_prob: Largest per-class prior. Defaults to 0.5.
    """

    priority = 'NORMAL'

    def __init__(self, layer: str, prior_prob: float = 0.01, count_type: str = 'instances',
                 min_prob: float = 1e-4, max_prob: float = 0.5) -> None:
        frequency_prior_bias([1], prior_prob, min_prob, max_prob)  # validate now, not at train
        check_count_type(count_type)
        self.layer = layer
        self.prior_prob = prior_prob
        self.count_type = count_type
        self.min_prob = min_prob
        self.max_prob = max_prob

    def before_train(self, runner) -> None:
        logger = MMLogger.get_current_instance()
        if bool(getattr(runner, '_resume', False)) or runner.cfg.get('load_from'):
            logger.info(f'ClassPriorInitHook: {self.layer} keeps the bias of the checkpoint')
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        bias = self._bias_of(model)
        counts, names = counts_from_dataset(runner.train_dataloader.dataset, self.count_type)
        if bias.numel() % len(counts):
            raise ValueError(f'ClassPriorInitHook: {self.layer} has {bias.numel()} outputs, not '
                             f'a multiple of the dataset\'s {len(counts)} classes: point layer= '
                             'at the classification layer')
        b_c = frequency_prior_bias(counts, self.prior_prob, self.min_prob, self.max_prob)
        with torch.no_grad():
            bias.view(-1, len(counts)).copy_(b_c.to(bias))
        lo, hi = int(b_c.argmin()), int(b_c.argmax())
        logger.info(f'ClassPriorInitHook: {self.layer} bias from training {self.count_type}: '
                    f'prior {torch.sigmoid(b_c[lo]).item():.2e} ({names[lo]}) .. '
                    f'{torch.sigmoid(b_c[hi]).item():.2e} ({names[hi]}), mean '
                    f'{torch.sigmoid(b_c).mean().item():.2e}')

    def _bias_of(self, model: nn.Module) -> torch.Tensor:
        try:
            layer: Optional[nn.Module] = model.get_submodule(self.layer)
        except AttributeError:
            layer = None
        bias = getattr(layer, 'bias', None)
        if not isinstance(bias, torch.Tensor):
            heads = [n for n, m in model.named_modules()
                     if isinstance(getattr(m, 'bias', None), torch.Tensor)
                     and n.startswith(('bbox_head', 'head'))][-6:]
            raise ValueError(f'ClassPriorInitHook: the model has no layer {self.layer!r} with '
                             f'a bias; layers with a bias in its head include {heads}')
        return bias


