"""Equalized Focal Loss (EFL) for sigmoid (one-vs-all) dense detection heads.

Li et al., "Equalized Focal Loss for Dense Long-Tailed Object Detection", CVPR 2022,
https://arxiv.org/abs/2201.02593 (official implementation: ModelTC/United-Perception
``efl.py``)::

    g_j = clamp(G+_j / G-_j, 0, 1),   gamma_j = gamma_b + s (1 - g_j),   w_j = gamma_j / gamma_b
    EFL = alpha_t * w_j * (1 - p_t)^gamma_j * l

In terms of the focal family (:mod:`.focal_family`): ``FocalTerms(gamma=gamma_j, alpha,
class_weight=w_j)``, with ``G+`` / ``G-`` accumulated from the family's gradient statistics.
"""
import warnings
from typing import Optional, Tuple, Union

import torch
from mmdet.registry import MODELS
from torch import Tensor

from ..registry import register
from .contract import (
    check_alpha,
    check_count,
    check_gamma,
    check_loaded_state,
    check_non_negative,
)
from .distributed import all_reduce_sum
from .focal_family import FocalFamilyLoss, FocalTerms
from .state_logging import describe, log_every, log_scalars


def equalization_factors(pos_grad: Tensor,
                         neg_grad: Tensor,
                         gamma_b: float = 2.0,
                         s: float = 8.0) -> Tuple[Tensor, Tensor, Tensor]:
    """Per-class ``g_j``, ``gamma_j`` and ``w_j`` from accumulated gradient magnitudes.

    ``g_j = clamp(G+_j / G-_j, 0, 1)``, ``gamma_j = gamma_b + s * (1 - g_j)``,
    ``w_j = gamma_j / gamma_b``. A class without statistics (``G-_j = 0``, e.g. before the first
    training step) gets ``g_j = 1``, i.e. ``gamma_j = gamma_b`` and ``w_j = 1``: plain focal loss.

    Args:
        pos_grad: ``G+`` of shape ``(C,)``.
        neg_grad: ``G-`` of shape ``(C,)``.
        gamma_b: Base focusing parameter ``gamma_b``.
        s: Scale factor ``s``.

    Returns:
        ``(g_j, gamma_j, w_j)``, each ``(C,)``, detached.
    """
    pos_grad, neg_grad = pos_grad.detach(), neg_grad.detach()
    ratio = pos_grad / neg_grad.clamp(min=torch.finfo(neg_grad.dtype).tiny)
    g_j = torch.where(neg_grad > 0, ratio.clamp(0, 1), torch.ones_like(ratio))
    gamma_j = gamma_b + s * (1 - g_j)
    return g_j, gamma_j, gamma_j / gamma_b


@register(MODELS)
class EqualizedFocalLoss(FocalFamilyLoss):
    """Equalized Focal Loss (Li et al., CVPR 2022) for sigmoid heads.

    Paper: `Equalized Focal Loss for Dense Long-Tailed Object Detection
    <https://arxiv.org/abs/2201.02593>`_. For each class ``j``::

        g_j     = clamp(G+_j / G-_j, 0, 1)
        gamma_j = gamma_b + s * (1 - g_j)          (detached)
        w_j     = gamma_j / gamma_b                (detached)
        EFL     = alpha_t * w_j * (1 - p_t)^gamma_j * l

    ``G+_j`` and ``G-_j`` (buffers ``pos_grad`` and ``neg_grad``, saved in checkpoints) are the
    accumulated magnitudes of ``d EFL / d x`` over the positive (``t = 1``) and negative
    (``t = 0``) elements of class ``j``; a soft target splits an element's magnitude into
    ``t`` and ``1 - t`` shares, as the reference implementation does.

    The statistics are updated in every training-mode forward, after the loss has been
    computed with the current state, from the analytic ``|dL/dx|`` of each element times its
    ``weight`` (ignored anchors count nothing): by default the gradient as back-propagated,
    after ``avg_factor`` and ``loss_weight``, as the official implementation accumulates it
    (``statistics='backprop'``), or before them (``'unnormalised'``). They start at 0, which
    counts as balanced (``g_j = 1``: the first step is focal loss), and are summed over
    processes under DDP. Why: docs/design.md. A checkpoint whose statistics are NaN, infinite
    or negative is refused with a ValueError naming the key. In a train loop the loss logs
    ``g_j``'s min, median and mean every iteration and its lowest and highest classes every 100.

    The statistics are per call: give the loss all pyramid levels of a mini-batch at once
    (imbfocal's RetinaNet head does); with per-level calls the later levels of a step already
    see the earlier levels' statistics.

    Args:
        num_classes: Number of classes ``C``. None (default) takes it from the first logits
            (or from a loaded checkpoint); the buffers are empty until then.
        use_sigmoid: Must be True (heads read it from the config); False raises ValueError.
        gamma_b: Base focusing parameter, at least 1. Defaults to 2.
        s: Scale factor ``s``, non-negative. Defaults to 8.
        alpha: Weight of positives in ``alpha_t``, in ``[0, 1]``; negative disables it.
            Defaults to 0.25.
        statistics: ``'backprop'`` or ``'unnormalised'`` (see above). Defaults to
            ``'backprop'``.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        loss_weight: Multiplier applied to the reduced loss. Defaults to 1.

    Raises:
        ValueError: For a hyper-parameter outside its range, NaN or inf, naming it.
    """

    def __init__(self,
                 num_classes: Optional[int] = None,
                 use_sigmoid: bool = True,
                 gamma_b: float = 2.0,
                 s: float = 8.0,
                 alpha: float = 0.25,
                 statistics: str = 'backprop',
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(use_sigmoid, reduction, loss_weight)
        if check_gamma(gamma_b, 'gamma_b') == 0:
            raise ValueError('gamma_b must be at least 1: w_j = gamma_j / gamma_b')
        if statistics not in ('backprop', 'unnormalised'):
            raise ValueError("statistics must be 'backprop' (the gradient as back-propagated, "
                             f"as the official code) or 'unnormalised', got {statistics!r}")
        if num_classes is not None:
            check_count(num_classes, 'num_classes', minimum=1)
        self.statistics = statistics
        self.gamma_b = gamma_b
        self.s = check_non_negative(s, 's')
        self.alpha = check_alpha(alpha)
        self.register_buffer('pos_grad', torch.zeros(num_classes or 0))
        self.register_buffer('neg_grad', torch.zeros(num_classes or 0))

    def _apply(self, fn, recurse=True):
        """``.half()`` / ``.bfloat16()`` leave the statistics in float32: summed over a run,
        they overflow float16 (G- reached inf after 5 steps of 20,000 x 8 anchors)."""
        kept = {name: getattr(self, name) for name in ('pos_grad', 'neg_grad')}
        super()._apply(fn, recurse)
        for name, before in kept.items():
            after = getattr(self, name)
            if after.dtype in (torch.float16, torch.bfloat16):
                setattr(self, name, before.to(device=after.device, dtype=torch.float32))
        return self

    @property
    def num_classes(self) -> Optional[int]:
        """``C``, or None while the buffers are still empty."""
        return self.pos_grad.numel() or None

    def _materialize(self, num_classes: int, device: torch.device) -> None:
        """Give the empty buffers ``num_classes`` zeros (first forward or checkpoint load)."""
        self.pos_grad = self.pos_grad.new_zeros(num_classes, device=device)
        self.neg_grad = self.neg_grad.new_zeros(num_classes, device=device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        """Checkpoint statistics are validated as the computed ones are (finite, ``>= 0``,
        one per class in both buffers): a corrupt checkpoint raises ValueError naming the key,
        it is not trained on. Empty buffers take the checkpoint's number of classes."""
        for name in ('pos_grad', 'neg_grad'):
            check_loaded_state(state_dict.get(prefix + name), prefix + name,
                               'gradient statistics')
        saved, other = state_dict.get(prefix + 'pos_grad'), state_dict.get(prefix + 'neg_grad')
        if saved is not None and other is not None and saved.shape != other.shape:
            raise ValueError(f'{prefix}pos_grad and {prefix}neg_grad in the checkpoint have '
                             f'shapes {tuple(saved.shape)} and {tuple(other.shape)}; they hold '
                             'one statistic per class each. The checkpoint is corrupt: resume '
                             'from another one')
        if self.num_classes is None and saved is not None:
            self._materialize(saved.numel(), self.pos_grad.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def class_factors(self) -> Tuple[Tensor, Tensor, Tensor]:
        """The current ``(g_j, gamma_j, w_j)``, each of shape ``(C,)``."""
        return equalization_factors(self.pos_grad, self.neg_grad, self.gamma_b, self.s)

    tracks_gradients = True

    @torch.no_grad()
    def accumulate_grad_stats(self, stats: Tensor, backprop_scale: Union[float, Tensor]) -> None:
        """Add this step's ``G+`` and ``G-`` (summed over processes) to the buffers: the
        gradient as back-propagated (``statistics='backprop'``) or before the divisor and
        ``loss_weight`` (``'unnormalised'``)."""
        if self.statistics == 'backprop':
            stats = stats * backprop_scale
        step = all_reduce_sum(stats.to(self.pos_grad.dtype))
        finite = torch.isfinite(step)
        if not finite.all():  # an overflow (AMP) must not poison the run's statistics
            bad = (~finite).any(0).nonzero().flatten().tolist()
            warnings.warn(f'EqualizedFocalLoss: non-finite gradient statistics for '
                          f'{len(bad)} classes ({bad[:10]}) in this step, from non-finite '
                          'logits or weights; those classes skip this step', stacklevel=3)
            step = torch.where(finite, step, 0.0)
        self.pos_grad += step[0]
        self.neg_grad += step[1]
        g_j = self.class_factors()[0]
        log_scalars(efl_g_min=g_j.min(), efl_g_median=g_j.median(), efl_g_mean=g_j.mean())
        log_every(self, 'g_j', 100, lambda: f'EqualizedFocalLoss g_j = G+/G-: {describe(g_j)}')

    def focal_terms(self, num_classes: int) -> FocalTerms:
        """``gamma_j`` and ``w_j`` from the current state (buffers sized on first use).

        Raises:
            ValueError: If ``num_classes`` differs from the module's ``C``.
        """
        if self.num_classes is None:
            self._materialize(num_classes, self.pos_grad.device)
        if num_classes != self.num_classes:
            raise ValueError(f'{type(self).__name__} expects logits of shape (N, '
                             f'{self.num_classes}) (num_classes={self.num_classes}), got '
                             f'{num_classes} classes')
        _, gamma_j, w_j = self.class_factors()
        return FocalTerms(gamma=gamma_j, alpha=self.alpha, class_weight=w_j)
