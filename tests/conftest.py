"""Fixtures shared across the suite: a tiny digits-LT build and configs pointed at it."""
import os.path as osp
from typing import Callable, Dict

import pytest


@pytest.fixture(scope='session')
def tiny_digits_lt(tmp_path_factory) -> str:
    """A digits-LT build of 8 train / 4 val images (class 7-9 appear once: LVIS-rare)."""
    from imbfocal.datasets.digits_lt import DigitsLTConfig, generate_digits_lt
    root = str(tmp_path_factory.mktemp('digits_lt'))
    generate_digits_lt(root, DigitsLTConfig(train_images=8, val_images=4, max_class_images=4,
                                            imbalance_factor=4, val_class_images=1))
    return root


@pytest.fixture
def digits_lt_options(tiny_digits_lt) -> Callable[..., Dict]:
    """``--cfg-options`` that point a shipped digits-LT config at the tiny build.

    Returns a function taking extra options (merged last) and returning the full mapping.
    """

    def options(**extra) -> Dict:
        root = tiny_digits_lt + '/'
        opts = {
            'train_dataloader.dataset.data_root': root,
            'train_dataloader.batch_size': 4,
            'train_dataloader.num_workers': 0,
            'train_dataloader.persistent_workers': False,
            'val_dataloader.dataset.data_root': root,
            'val_dataloader.num_workers': 0,
            'val_dataloader.persistent_workers': False,
            'test_dataloader.dataset.data_root': root,
            'test_dataloader.num_workers': 0,
            'test_dataloader.persistent_workers': False,
            'val_evaluator.ann_file': osp.join(root, 'annotations/lvis_v1_val.json'),
            'test_evaluator.ann_file': osp.join(root, 'annotations/lvis_v1_val.json'),
            'train_cfg.max_epochs': 1,
            'train_cfg.val_interval': 1,
            'default_hooks.logger.interval': 1,
            'default_hooks.checkpoint.interval': 1,
        }
        opts.update(extra)
        return opts

    return options


@pytest.fixture(scope='session')
def tiny_digits_lt100(tmp_path_factory) -> str:
    """A tiny lt100-shaped build (100 two-digit classes, train / val / test) with a backbone
    pretrained for a few steps where the lt100 configs look for it."""
    from imbfocal.datasets.digits_lt import DigitsLTConfig, generate_digits_lt
    from imbfocal.datasets.digits_pretraining import PretrainConfig, pretrain_backbone
    root = str(tmp_path_factory.mktemp('digits_lt100'))
    generate_digits_lt(root, DigitsLTConfig(
        image_size=64, train_images=60, val_images=20, test_images=20, max_class_images=8,
        imbalance_factor=8, val_class_images=1, test_class_images=1, min_digits=2,
        max_digits=8, digit_size=(10, 14), digits_per_object=2, class_order='shuffled'))
    pretrain_backbone(root, PretrainConfig(patches=128, epochs=1, batch_size=64))
    return root


@pytest.fixture
def digits_lt100_options(tiny_digits_lt100) -> Callable[..., Dict]:
    """``--cfg-options`` that point a shipped lt100 config at the tiny lt100 build."""

    def options(**extra) -> Dict:
        root = tiny_digits_lt100 + '/'
        opts = {f'{loader}_dataloader.{key}': value
                for loader in ('train', 'val', 'test')
                for key, value in (('dataset.data_root', root), ('num_workers', 0),
                                   ('persistent_workers', False))}
        opts.update({
            'train_dataloader.batch_size': 4,
            'val_evaluator.ann_file': osp.join(root, 'annotations/lvis_v1_val.json'),
            'test_evaluator.ann_file': osp.join(root, 'annotations/lvis_v1_test.json'),
            'model.backbone.init_cfg.checkpoint':
            osp.join(root, 'pretrained/resnet18_w32_digits.pth'),
            'train_cfg.max_iters': 2,
            'train_cfg.val_interval': 2,
            'default_hooks.logger.interval': 1,
            'default_hooks.checkpoint.interval': 2,
        })
        opts.update(extra)
        return opts

    return options
