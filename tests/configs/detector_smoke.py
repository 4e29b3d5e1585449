"""Helpers to run a detector config for one training and one inference step on CPU, cheaply.

Used by ``test_configs.py`` and ``test_cfg_options_swap.py``: the backbone is shrunk to an
untrained ResNet-18 (no pretrained download; the machines have no network), the classes are
kept (1203 for LVIS), and the batch is two synthetic 64x64 images.
"""
import contextlib
import logging
import math
from typing import Dict, List, Optional

import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config, ConfigDict
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper

from lab.benchmarking import long_tailed_counts

# Losses that need class counts (filled by ClassCountsHook in training; set by hand here).
COUNTED_LOSSES = ('ClassBalancedFocalLoss', 'AdaptiveFocalLoss',
                  'GaussianClassBalancedFocalLoss', 'GaussianAdaptiveFocalLoss')
R18_CHANNELS = [64, 128, 256, 512]
NARROW = 64  # FPN / head channels (a multiple of GroupNorm's 32 groups)


def shrink_model(model: ConfigDict) -> None:
    """Make ``model`` (a detector config) cheap: untrained ResNet-18 backbone, 64-channel FPN
    and head, no download. The number of classes and everything else are kept."""
    backbone = model.backbone
    backbone.init_cfg = None
    if backbone.type == 'ResNet' and backbone.depth != 18:
        backbone.depth = 18
        if model.neck.type == 'FPN':
            model.neck.in_channels = R18_CHANNELS[-len(model.neck.in_channels):]
        else:
            model.neck.in_channels = R18_CHANNELS[-1]
    if model.neck.type == 'FPN':
        model.neck.out_channels = model.bbox_head.in_channels = NARROW
        model.bbox_head.feat_channels = NARROW


def classification_losses(model: ConfigDict) -> List[ConfigDict]:
    """The classification loss configs of a detector config's head."""
    head = model.bbox_head
    return [head[key] for key in ('loss_cls', 'loss_center_heatmap') if key in head]


def set_class_counts(model: ConfigDict) -> None:
    """Give losses that need class counts a long-tailed list (no dataset in these tests)."""
    for loss in classification_losses(model):
        if loss.type in COUNTED_LOSSES:
            loss.class_counts = long_tailed_counts(model.bbox_head.num_classes)


def synthetic_batch(num_classes: int, size: int = 64) -> dict:
    """Two random ``size`` x ``size`` images with 3 and 2 boxes, as a dataloader yields them."""
    return demo_mm_inputs(
        batch_size=2, image_shapes=(3, size, size), num_items=[3, 2], num_classes=num_classes)


@contextlib.contextmanager
def one_thread():
    """Run torch on one thread: these tiny models gain nothing from more, and on a shared
    2-core machine OpenMP's spinning threads cost several times the work itself."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def build_detector(cfg: Config) -> torch.nn.Module:
    """Build and initialise the (already shrunk) detector of ``cfg``."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # no per-parameter initialisation report
    try:
        with one_thread():
            model = MODELS.build(cfg.model)
            model.init_weights()
    finally:
        logger.setLevel(level)
    return model


def train_and_predict(cfg: Config, model: Optional[torch.nn.Module] = None) -> Dict[str, float]:
    """One optimiser step with the config's optimiser wrapper, then one ``test_step``.

    Args:
        cfg: A config whose model is already shrunk (:func:`shrink_model`).
        model: The built and initialised detector of ``cfg``; built here if None.

    Returns:
        dict: The logged losses of the training step (asserted finite here).
    """
    with one_thread():
        return _train_and_predict(cfg, build_detector(cfg) if model is None else model)


def _train_and_predict(cfg: Config, model: torch.nn.Module) -> Dict[str, float]:
    torch.manual_seed(0)
    data = synthetic_batch(cfg.model.bbox_head.num_classes)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train()
    log_vars = model.train_step(data, optim_wrapper)
    log_vars = {key: float(value.detach()) for key, value in log_vars.items()}
    bad = {key: value for key, value in log_vars.items() if not math.isfinite(value)}
    assert not bad, f'non-finite losses: {bad}'
    assert 'loss' in log_vars and any(key.startswith('loss_') for key in log_vars)

    model.eval()
    with torch.no_grad():
        results = model.test_step(data)
    assert len(results) == 2
    for result in results:
        scores = result.pred_instances.scores
        assert torch.isfinite(scores).all()
        assert torch.isfinite(result.pred_instances.bboxes).all()
    return log_vars
