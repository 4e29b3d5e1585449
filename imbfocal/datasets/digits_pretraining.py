"""A digit-classification backbone for digits-LT detectors: this benchmark's ImageNet.

Detectors on LVIS start from backbones pretrained on a balanced classification set; so do the
digits-LT lt100 configs. :func:`pretrain_backbone` trains the detectors' ResNet-18 (half width)
to classify single handwritten digits '0'-'9' (balanced) rendered as the generator renders
them (size, ink, paper, clutter), from the **train split's** source digits only, and writes
its weights where the configs load them (``init_cfg=dict(type='Pretrained', ...)``). It never
sees a two-digit class label, a val or test source digit, or the long-tailed layout.

Files under ``<data_root>/pretrained/``: ``resnet18_w32_digits.pth`` (``{'state_dict':
backbone weights, 'meta': ...}``) and ``meta.json`` (the parameters, the build it came from,
the held-out accuracy on val-split digits, the seconds it took).
"""
import dataclasses
import json
import os
import time
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from . import digits_lt

CHECKPOINT = 'resnet18_w32_digits.pth'
# DetDataPreprocessor's ImageNet mean and std, RGB, as the digits-LT configs normalise
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class PretrainConfig:
    """How the backbone is pretrained (all of it goes to ``meta.json``).

    Attributes:
        seed: Seed of the patches and of the training.
        patches: Training patches, each one digit on cluttered paper.
        patch_size: Side of a patch in pixels.
        digit_size: ``(min, max)`` digit height, as the generator's ``digit_size``.
        epochs: Passes over the patches.
        batch_size: Patches per step.
        lr: Peak AdamW learning rate of the one-cycle schedule.
        base_channels: Width of the ResNet-18 (the digits-LT configs use 32).
    """
    seed: int = 0
    patches: int = 20000
    patch_size: int = 40
    digit_size: Tuple[int, int] = (12, 26)
    epochs: int = 4
    batch_size: int = 128
    lr: float = 2e-3
    base_channels: int = 32

    def to_dict(self) -> Dict[str, Any]:
        """The parameters as json-compatible values."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


def digit_patches(sources: Sequence[int], num: int, cfg: PretrainConfig,
                  seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """``num`` RGB patches of one digit each, drawn from the source samples ``sources``.

    Args:
        sources: Indices into scikit-learn's digits.
        num: Number of patches.
        cfg: Patch size and digit heights.
        seed: Seed of the sampling and rendering.

    Returns:
        ``(images uint8 (num, S, S, 3), labels int64 (num,))``.
    """
    digits, labels = digits_lt.load_source_digits()
    rng = np.random.default_rng(seed)
    size = cfg.patch_size
    images = np.zeros((num, size, size, 3), np.uint8)
    targets = np.zeros(num, np.int64)
    for k in range(num):
        src = int(sources[rng.integers(len(sources))])
        img = digits_lt.render_patch(rng, digits[src], size, cfg.digit_size)
        images[k], targets[k] = img, labels[src]
    return images, targets


def _normalised(images: np.ndarray):
    import torch
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def pretrain_backbone(data_root: str, cfg: Optional[PretrainConfig] = None) -> Dict[str, Any]:
    """Pretrain the backbone on the train split's digits of the build in ``data_root``.

    Args:
        data_root: A digits-LT build (``meta.json`` names its source digits per split).
        cfg: Pretraining parameters. Defaults to ``PretrainConfig()``.

    Returns:
        The ``meta.json`` written next to the checkpoint.

    Raises:
        FileNotFoundError: If ``data_root`` holds no digits-LT build.
    """
    import torch
    import torch.nn.functional as F
    from mmdet.models.backbones import ResNet
    from mmengine.logging import MMLogger, print_log

    cfg = cfg or PretrainConfig()
    logger = MMLogger.get_current_instance()
    build = _read_build(data_root)
    tic = time.time()
    train_x, train_y = digit_patches(build['train']['source_indices'], cfg.patches, cfg,
                                     cfg.seed)
    val_x, val_y = digit_patches(build['val']['source_indices'], 2000, cfg, cfg.seed + 1)
    torch.manual_seed(cfg.seed)
    backbone = ResNet(depth=18, base_channels=cfg.base_channels, out_indices=(3, ),
                      norm_eval=False)
    head = torch.nn.Linear(8 * cfg.base_channels, 10)
    params = list(backbone.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.05)
    steps_per_epoch = len(train_x) // cfg.batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, cfg.lr, pct_start=0.1,
                                                   total_steps=cfg.epochs * steps_per_epoch)
    inputs, targets = _normalised(train_x), torch.from_numpy(train_y)
    generator = torch.Generator().manual_seed(cfg.seed)

    def accuracy() -> float:
        backbone.eval()
        with torch.no_grad():
            logits = head(backbone(_normalised(val_x))[0].mean((2, 3)))
        backbone.train()
        return float((logits.argmax(1) == torch.from_numpy(val_y)).float().mean())

    for epoch in range(cfg.epochs):
        order = torch.randperm(len(inputs), generator=generator)
        for step in range(steps_per_epoch):
            batch = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            loss = F.cross_entropy(head(backbone(inputs[batch])[0].mean((2, 3))),
                                   targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        print_log(f'digit backbone pretraining: epoch {epoch + 1}/{cfg.epochs}, loss '
                  f'{loss.item():.3f}, val-split digit accuracy {accuracy():.3f}',
                  logger=logger)
    meta = dict(params=cfg.to_dict(), build=dict(version=build['version'],
                                                 params=build['params']),
                val_digit_accuracy=round(accuracy(), 4),
                seconds=round(time.time() - tic, 1))
    out_dir = os.path.join(data_root, 'pretrained')
    os.makedirs(out_dir, exist_ok=True)
    torch.save(dict(state_dict=backbone.state_dict(), meta=meta),
               os.path.join(out_dir, CHECKPOINT))
    with open(os.path.join(out_dir, 'meta.json'), 'w', encoding='utf-8') as f:
        json.dump(meta, f, indent=1)
    print_log(f"digit backbone written to {out_dir}/{CHECKPOINT} in {meta['seconds']} s "
              f"(val-split digit accuracy {meta['val_digit_accuracy']:.3f})", logger=logger)
    return meta


def is_pretrained(data_root: str, cfg: Optional[PretrainConfig] = None) -> bool:
    """Whether ``data_root`` holds a backbone pretrained with ``cfg`` on its current build."""
    cfg = cfg or PretrainConfig()
    path = os.path.join(data_root, 'pretrained', 'meta.json')
    if not os.path.isfile(os.path.join(data_root, 'pretrained', CHECKPOINT)) \
            or not os.path.isfile(path):
        return False
    try:
        build = _read_build(data_root)
        with open(path, encoding='utf-8') as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return False
    return meta.get('params') == cfg.to_dict() and meta.get('build') == dict(
        version=build['version'], params=build['params'])


def _read_build(data_root: str) -> Dict[str, Any]:
    path = os.path.join(data_root, 'meta.json')
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{data_root} holds no digits-LT build (no meta.json); make '
                                f'one first: python tools/make_digits_lt.py --out {data_root}')
    with open(path, encoding='utf-8') as f:
        return json.load(f)
