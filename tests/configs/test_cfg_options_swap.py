"""Swapping imbfocal's losses into a stock MMDetection config from the command line.

The options are parsed by MMEngine's ``DictAction`` and merged with ``Config.merge_from_dict``,
exactly as ``tools/train.py --cfg-options`` does, into MMDetection's own
``retinanet/retinanet_r50_fpn_1x_coco.py``; the model then trains one iteration on a tiny
synthetic batch. ``docs/configs.md`` documents these same option strings (checked below).

Which keys each swap needs (MMDetection's RetinaNet ``loss_cls`` is ``FocalLoss`` with
``use_sigmoid, gamma, alpha, loss_weight``):

* ``ClassBalancedFocalLoss`` / ``AdaptiveFocalLoss`` accept all four keys: change ``type``,
  and for class weights give ``class_counts`` (a training annotation file: ``custom_hooks``
  holds a list of dicts, which ``--cfg-options`` cannot express, so ``ClassCountsHook`` is for
  config files). ``AdaptiveFocalLoss`` at its default ``beta=0`` has no class weights.
* ``DualFocalLoss`` rejects ``alpha`` and ``EqualizedFocalLoss`` ``gamma``;
  ``ParameterFreeLoss`` takes both, but FocalLoss's values are not PF's own defaults:
  ``loss_cls._delete_=True`` drops the FocalLoss keys, and ``use_sigmoid=True`` must then be
  given again (RetinaHead reads it to size its classifier; absent means softmax).
* The batch-statistic losses (PF, EFL) also need ``model.bbox_head.type=RetinaAllLevelsHead``.
"""
import argparse
import json
from pathlib import Path

import mmdet
import pytest
from detector_smoke import shrink_model, train_and_predict
from mmdet.datasets import CocoDataset
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config, DictAction

import imbfocal  # noqa: F401  (tools/train.py imports it before merging the options)

register_all_modules()

MMDET_CONFIGS = Path(mmdet.__file__).parent / '.mim' / 'configs'
STOCK = {'retinanet': 'retinanet/retinanet_r50_fpn_1x_coco.py',
         'fcos': 'fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
         'centernet': 'centernet/centernet_r18_8xb16-crop512-140e_coco.py'}
DOCS = [Path(__file__).resolve().parents[2] / name for name in ('docs/configs.md', 'README.md')]
COCO_TRAIN_ANN = 'data/coco/annotations/instances_train2017.json'
HEAD = 'model.bbox_head'
LOSS = f'{HEAD}.loss_cls'
HEATMAP = f'{HEAD}.loss_center_heatmap'
# (detector, loss) -> the options; the README shows the AFL rows (COUNTS for the file)
SWAPS = {
    ('retinanet', 'ClassBalancedFocalLoss'): [
        f'{LOSS}.type=ClassBalancedFocalLoss', f'{LOSS}.class_counts={COCO_TRAIN_ANN}'
    ],
    ('retinanet', 'AdaptiveFocalLoss'): [f'{LOSS}.type=AdaptiveFocalLoss'],
    ('retinanet', 'ParameterFreeLoss'): [
        f'{HEAD}.type=RetinaAllLevelsHead', f'{LOSS}._delete_=True',
        f'{LOSS}.type=ParameterFreeLoss', f'{LOSS}.use_sigmoid=True'
    ],
    ('retinanet', 'DualFocalLoss'): [
        f'{LOSS}._delete_=True', f'{LOSS}.type=DualFocalLoss', f'{LOSS}.use_sigmoid=True'
    ],
    ('retinanet', 'EqualizedFocalLoss'): [
        f'{HEAD}.type=RetinaAllLevelsHead', f'{LOSS}._delete_=True',
        f'{LOSS}.type=EqualizedFocalLoss', f'{LOSS}.use_sigmoid=True'
    ],
    ('fcos', 'AdaptiveFocalLoss'): [f'{LOSS}.type=AdaptiveFocalLoss'],
    ('centernet', 'GaussianAdaptiveFocalLoss'): [
        f'{HEAD}.type=CenterNetPriorHead', f'{HEATMAP}.type=GaussianAdaptiveFocalLoss',
        f'{HEATMAP}.class_counts={COCO_TRAIN_ANN}'
    ],
}


def parse_cfg_options(options):
    """Parse ``key=value`` strings as ``tools/train.py --cfg-options`` does."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(['--cfg-options', *options]).cfg_options


def _write_coco_annotations(path: Path) -> None:
    """A tiny COCO training file with MMDetection's 80 COCO categories (long-tailed)."""
    classes = CocoDataset.METAINFO['classes']
    categories = [dict(id=i + 1, name=name) for i, name in enumerate(classes)]
    annotations = [
        dict(id=n, image_id=n % 7, category_id=1 + n % (1 + n % 80), bbox=[0, 0, 8, 8],
             area=64, iscrowd=0) for n in range(400)
    ]
    images = [dict(id=i, file_name=f'{i}.jpg', width=64, height=64) for i in range(7)]
    path.write_text(json.dumps(dict(images=images, annotations=annotations,
                                    categories=categories)))


@pytest.mark.parametrize('detector, loss_type', list(SWAPS),
                         ids=[f'{d}-{loss}' for d, loss in SWAPS])
def test_cfg_options_swap_trains(detector, loss_type, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the documented relative annotation path resolves here
    ann = tmp_path / COCO_TRAIN_ANN
    ann.parent.mkdir(parents=True)
    _write_coco_annotations(ann)

    cfg = Config.fromfile(str(MMDET_CONFIGS / STOCK[detector]))
    key = 'loss_center_heatmap' if detector == 'centernet' else 'loss_cls'
    assert cfg.model.bbox_head[key].type in ('FocalLoss', 'GaussianFocalLoss')
    cfg.merge_from_dict(parse_cfg_options(SWAPS[detector, loss_type]))

    loss_cfg = cfg.model.bbox_head[key]
    assert loss_cfg.type == loss_type and '_delete_' not in loss_cfg
    if detector != 'centernet':
        assert loss_cfg.use_sigmoid is True
    if '_delete_=True' in ' '.join(SWAPS[detector, loss_type]):
        assert 'gamma' not in loss_cfg and 'alpha' not in loss_cfg
    loss = MODELS.build(loss_cfg)
    if 'class_counts' in loss_cfg:  # the class defaults, counted from the file
        assert loss.class_counts.sum() == 400 and loss.beta == 0.99
    elif loss_type == 'AdaptiveFocalLoss':  # the damping alone: no counts, every class weighs 1
        assert loss.beta == 0.0 and not loss.has_class_counts
    shrink_model(cfg.model)
    log_vars = train_and_predict(cfg)
    assert log_vars['loss_cls' if detector != 'centernet' else 'loss_center_heatmap'] > 0


def test_the_documented_options_are_the_tested_ones():
    """docs/configs.md shows each swap's options verbatim, space-separated as on a shell; the
    README shows the AFL swap of each detector (with ``$COUNTS`` for the annotation file)."""
    configs_md, readme = (path.read_text() for path in DOCS)
    for (detector, loss_type), options in SWAPS.items():
        line = ' '.join(options)
        assert line in configs_md, f'{detector} {loss_type}: options missing from configs.md'
        if 'AdaptiveFocalLoss' in loss_type:
            assert line.replace(COCO_TRAIN_ANN, '$COUNTS') in readme, (detector, loss_type)
