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
import re
from typing import Dict, List, Optional, Tuple

import torch
from mmdet.models.dense_heads import AnchorHead, CenterNetHead, FCOSHead, RetinaHead
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


def classification_layers(model: nn.Module) -> Dict[str, Tuple[nn.Module, int]]:
    """The classification layer of every supported head of ``model``, by dotted name.

    ========================================== ========================= ====================
    head (and its subclasses)                  classification layer      output channels
    ========================================== ========================= ====================
    ``RetinaHead`` (``RetinaAllLevelsHead``)   ``retina_cls``            ``A * C``
    ``AnchorHead``                             ``conv_cls``              ``A * C``
    ``FCOSHead``                               ``conv_cls``              ``C``
    ``CenterNetHead`` (``CenterNetPriorHead``) ``heatmap_head.<last>``   ``C``
    ========================================== ========================= ====================

    ``A`` is the head's ``num_base_priors`` (anchors per location), ``C`` its
    ``cls_out_channels`` (``num_classes`` for a sigmoid head).

    Returns:
        ``{name: (head, output channels the layer must have)}``, in module order.
    """
    layers: Dict[str, Tuple[nn.Module, int]] = {}
    for name, module in model.named_modules():
        prefix = f'{name}.' if name else ''
        if isinstance(module, CenterNetHead):
            last = len(module.heatmap_head) - 1
            layers[f'{prefix}heatmap_head.{last}'] = (module, module.num_classes)
        elif isinstance(module, RetinaHead):
            outputs = module.num_base_priors * module.cls_out_channels
            layers[prefix + 'retina_cls'] = (module, outputs)
        elif isinstance(module, (AnchorHead, FCOSHead)) and hasattr(module, 'conv_cls'):
            outputs = module.num_base_priors * module.cls_out_channels
            layers[prefix + 'conv_cls'] = (module, outputs)
    return layers


@register(HOOKS)
class ClassPriorInitHook(Hook):
    """Set a sigmoid classification layer's bias from the training set's class frequencies.

    Add it with ``custom_hooks=[dict(type='ClassPriorInitHook', layer='bbox_head.retina_cls')]``
    (FCOS: ``'bbox_head.conv_cls'``; CenterNet: ``'bbox_head.heatmap_head.2'``). In
    ``before_train`` it counts the training dataset and sets the layer's bias to
    :func:`frequency_prior_bias`; for a layer with ``A * C`` outputs (``A`` anchors per
    location, MMDetection's anchor-major channel order) every anchor gets the same class biases.

    Which layer: only the classification layer of a supported head
    (:func:`classification_layers`: RetinaHead's ``retina_cls``, AnchorHead's ``conv_cls``,
    FCOSHead's ``conv_cls``, CenterNetHead's last ``heatmap_head`` conv), with exactly the
    output channels that head gives it, on a sigmoid head whose ``num_classes`` is the training
    dataset's. Any other layer (a regression conv, an FPN conv, a softmax head) is refused with
    a ValueError naming the model's classification layers; a layer whose outputs merely are a
    multiple of ``C`` is not enough.

    Which runs keep the bias they loaded: the hook decides from what MMEngine actually loaded
    (``after_load_checkpoint`` receives the checkpoint of ``load_from`` or of a resume). The
    bias is kept when that checkpoint holds ``<layer>.bias`` with the layer's shape, so a
    resumed run and a fine-tuning run on the same classes keep it. Otherwise, a checkpoint of
    another class count (its bias was not loaded: MMEngine skips a mismatched shape), one
    without the layer (a backbone), or no checkpoint at all (including ``resume=True`` with
    nothing to resume), the bias is set here; the log says which case applied.

    Args:
        layer: Dotted path of the classification layer in the model (DDP unwrapped).
        prior_prob: Mean prior over the classes. Defaults to 0.01.
        count_type: ``'instances'`` or ``'images'``. Defaults to ``'instances'``.
        min_prob: Smallest per-class prior. Defaults to 1e-4.
        max_prob: Largest per-class prior. Defaults to 0.5.

    Raises:
        ValueError: At build, for invalid probabilities or ``count_type``; before training, for
            a layer that is not a supported head's classification layer, a softmax head, or a
            head whose ``num_classes`` is not the training dataset's.
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
        self._loaded_shape: Optional[Tuple[int, ...]] = None
        self._checkpoint_loaded = False

    def before_run(self, runner) -> None:
        """Check the layer before any weights are initialised or loaded."""
        self._loaded_shape, self._checkpoint_loaded = None, False
        self._classifier(_unwrapped(runner.model))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Note the shape of ``<layer>.bias`` in the checkpoint MMEngine loaded (None: absent),
        with MMEngine's own key revision (a ``module.`` prefix dropped)."""
        state = checkpoint.get('state_dict', checkpoint)
        key = self.layer + '.bias'
        shapes = [tuple(value.shape) for name, value in state.items()
                  if re.sub(r'^module\.', '', name) == key and hasattr(value, 'shape')]
        self._loaded_shape = shapes[0] if shapes else None
        self._checkpoint_loaded = True

    def before_train(self, runner) -> None:
        logger = MMLogger.get_current_instance()
        model = _unwrapped(runner.model)
        layer, head = self._classifier(model)
        if self._checkpoint_loaded and self._loaded_shape == tuple(layer.bias.shape):
            logger.info(f'ClassPriorInitHook: {self.layer} keeps the bias it loaded from the '
                        'checkpoint')
            return
        counts, names = counts_from_dataset(runner.train_dataloader.dataset, self.count_type)
        if len(counts) != head.num_classes:
            raise ValueError(f'ClassPriorInitHook: the head of {self.layer} has num_classes='
                             f'{head.num_classes} but the training dataset has {len(counts)} '
                             "classes: set the head's num_classes to the dataset's")
        b_c = frequency_prior_bias(counts, self.prior_prob, self.min_prob, self.max_prob)
        with torch.no_grad():
            layer.bias.view(-1, len(counts)).copy_(b_c.to(layer.bias))
        lo, hi = int(b_c.argmin()), int(b_c.argmax())
        logger.info(f'ClassPriorInitHook: {self.layer} bias from training {self.count_type}'
                    f'{self._why_set(layer)}: prior {torch.sigmoid(b_c[lo]).item():.2e} '
                    f'({names[lo]}) .. {torch.sigmoid(b_c[hi]).item():.2e} ({names[hi]}), mean '
                    f'{torch.sigmoid(b_c).mean().item():.2e}')

    def _why_set(self, layer: nn.Module) -> str:
        """Why a loaded checkpoint's bias is not kept (empty without a checkpoint)."""
        if not self._checkpoint_loaded:
            return ''
        if self._loaded_shape is None:
            return f' (the loaded checkpoint holds no {self.layer}.bias)'
        return (f' (the loaded checkpoint\'s {self.layer}.bias has shape {self._loaded_shape}, '
                f'the layer {tuple(layer.bias.shape)}: another class count, not loaded)')

    def _classifier(self, model: nn.Module) -> Tuple[nn.Module, nn.Module]:
        """``(layer, head)`` for ``self.layer``, after checking it is a sigmoid head's
        classification layer of the right size.

        Raises:
            ValueError: Naming the model's classification layers.
        """
        layers = classification_layers(model)
        named = list(layers) or ('none: the model has no RetinaHead, AnchorHead, FCOSHead or '
                                 'CenterNetHead')
        if self.layer not in layers:
            raise ValueError(f'ClassPriorInitHook: {self.layer!r} is not the classification '
                             f"layer of the model's head; its classification layers: {named}. "
                             "Set layer= to one of them")
        head, outputs = layers[self.layer]
        layer = model.get_submodule(self.layer)
        bias = getattr(layer, 'bias', None)
        if not isinstance(bias, torch.Tensor) or bias.numel() != outputs:
            raise ValueError(f'ClassPriorInitHook: {self.layer} must have a bias of {outputs} '
                             f'outputs (its head\'s anchors x classes), got '
                             f'{None if bias is None else bias.numel()}')
        if not getattr(head, 'use_sigmoid_cls', True):
            raise ValueError(f'ClassPriorInitHook: the head of {self.layer} is a softmax head '
                             '(loss_cls use_sigmoid=False); the frequency prior is for sigmoid '
                             'heads')
        return layer, head


def _unwrapped(model: nn.Module) -> nn.Module:
    return model.module if is_model_wrapper(model) else model
