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
