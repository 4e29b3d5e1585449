"""Every shipped config (``configs/**/*.py`` except ``_base_``) loads, names resolvable types,
follows the naming/contract of SPEC §3-4, and trains one step and predicts on CPU.

New configs are picked up automatically. The detectors are shrunk to an untrained ResNet-18 on
two 64x64 synthetic images (see ``detector_smoke.py``); the number of classes is kept. The
digits-LT configs also run as shipped on a tiny digits-LT build: their datasets, pipelines and
evaluator included.
"""
import copy
import functools
import math
from pathlib import Path

import mmdet
import pytest
import torch
from mmdet import registry as mmdet_registry
from mmdet.registry import DATASETS, MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.evaluator import Evaluator
from mmengine.optim import build_optim_wrapper

import imbfocal  # noqa: F401  (registers imbfocal's modules)

from detector_smoke import (
    COUNTED_LOSSES,
    build_detector,
    classification_losses,
    one_thread,
    set_class_counts,
    shrink_model,
    train_and_predict,
)

register_all_modules()

CONFIG_ROOT = Path(__file__).resolve().parents[2] / 'configs'
CONFIGS = sorted(path for path in CONFIG_ROOT.rglob('*.py') if '_base_' not in path.parts)
MMDET_CONFIGS = Path(mmdet.__file__).parent / '.mim' / 'configs'


def _ids(paths):
    """Test ids: each config's path under ``configs/``."""
    return [str(path.relative_to(CONFIG_ROOT)) for path in paths]


CONFIG_IDS = _ids(CONFIGS)

DATASET_CLASSES = {'coco': 80, 'lvis-v1': 1203, 'voc0712': 20, 'digits-lt': 10,
                   'digits-lt100': 100}
SIGMOID_LOSSES = {
    'focal': 'FocalLoss',
    'cb-focal': 'ClassBalancedFocalLoss',
    'afl': 'AdaptiveFocalLoss',
    'pf': 'ParameterFreeLoss',
    'dfl': 'DualFocalLoss',
    'efl': 'EqualizedFocalLoss',
}
HEATMAP_LOSSES = {
    'focal': 'GaussianFocalLoss',
    'cb-focal': 'GaussianClassBalancedFocalLoss',
    'afl': 'GaussianAdaptiveFocalLoss',
    'pf': 'GaussianParameterFreeLoss',
}
DETECTORS = {  # folder: (head type, classification losses by config-name key)
    'retinanet': ('RetinaAllLevelsHead', SIGMOID_LOSSES),
    'fcos': ('FCOSHead', SIGMOID_LOSSES),
    'centernet': ('CenterNetPriorHead', HEATMAP_LOSSES),
}
# Types imbfocal registers (being written concurrently): a config naming one that is not
# registered yet is skipped with this reason instead of failing.
IMBFOCAL_TYPES = {
    *SIGMOID_LOSSES.values(), *HEATMAP_LOSSES.values(), 'RetinaAllLevelsHead',
    'CenterNetPriorHead', 'ClassCountsHook', 'FastLVISV1Dataset', 'LongTailMetric'
}
IMBFOCAL_TYPES -= {'FocalLoss', 'GaussianFocalLoss'}
# Dicts with a `type` that no registry builds (mmcv's NMS is chosen by name).
UNREGISTERED_KEYS = {'nms'}
REGISTRIES = [
    value for name, value in vars(mmdet_registry).items()
    if name.isupper() and hasattr(value, 'get')
]
PRIOR_BIAS = -math.log(99.0)  # pi = 0.01


@functools.lru_cache(maxsize=None)
def _load(path: Path) -> Config:
    return Config.fromfile(str(path))


def load_config(path: Path) -> Config:
    """The config at ``path`` (parsed once per session; a copy the caller may modify)."""
    return copy.deepcopy(_load(path))


def _name_parts(path: Path):
    """``(detector, loss key, dataset)`` from ``<detector>_..._<loss>_<schedule>_<dataset>.py``."""
    parts = path.stem.split('_')
    return path.parent.name, parts[-3], parts[-1]


def _types(node, key=None):
    """Yield every ``type`` string in a config tree (except where no registry is used)."""
    if isinstance(node, dict):
        if isinstance(node.get('type'), str) and key not in UNREGISTERED_KEYS:
            yield node['type']
        for child_key, child in node.items():
            yield from _types(child, child_key)
    elif isinstance(node, (list, tuple)):
        for child in node:
            yield from _types(child, key)


def _unresolved_types(cfg: Config):
    return sorted({
        name
        for name in _types(cfg.to_dict())
        if all(registry.get(name) is None for registry in REGISTRIES)
    })


def _skip_if_imbfocal_types_missing(cfg: Config):
    missing = _unresolved_types(cfg)
    pending = [name for name in missing if name in IMBFOCAL_TYPES]
    if pending:
        pytest.skip(f'imbfocal types not registered yet: {pending}')
    return missing


def _classification_bias(model: torch.nn.Module) -> torch.Tensor:
    head = model.bbox_head
    if hasattr(head, 'heatmap_head'):  # CenterNet
        return head.heatmap_head[-1].bias
    return (head.retina_cls if hasattr(head, 'retina_cls') else head.conv_cls).bias


def test_configs_found():
    expected = {
        f'{detector}/{loss}/{dataset}'
        for detector, (_, losses) in DETECTORS.items() for loss in losses
        for dataset in DATASET_CLASSES
    }
    found = {'{}/{}/{}'.format(*_name_parts(path)) for path in CONFIGS}
    assert found == expected, (f'missing: {sorted(expected - found)}; '
                               f'unexpected: {sorted(found - expected)}')
    assert len(CONFIGS) == len(expected)


@pytest.mark.parametrize('path', CONFIGS, ids=CONFIG_IDS)
def test_config_contract(path: Path):
    """SPEC §3-4: plugin import, head, prior, classes, loss, counts hook, LVIS protocol."""
    detector, loss_key, dataset = _name_parts(path)
    cfg = load_config(path)
    head = cfg.model.bbox_head
    head_type, losses = DETECTORS[detector]

    assert cfg.custom_imports == dict(imports=['imbfocal'], allow_failed_imports=False)
    assert head.type == head_type
    if detector == 'centernet':
        assert head.prior_prob == 0.01
    assert head.num_classes == DATASET_CLASSES[dataset]
    (loss_cfg, ) = classification_losses(cfg.model)
    assert loss_cfg.type == losses[loss_key]
    hooks = [hook.type for hook in cfg.get('custom_hooks', [])]
    assert ('ClassCountsHook' in hooks) == (loss_cfg.type in COUNTED_LOSSES)
    assert 'class_counts' not in loss_cfg  # counts come from the dataset, never hand-copied

    evaluator = cfg.test_evaluator
    if dataset == 'lvis-v1':
        train_set = cfg.train_dataloader.dataset
        assert train_set.type == 'ClassBalancedDataset' and train_set.oversample_thr == 1e-3
        assert train_set.dataset.type == 'FastLVISV1Dataset'
        for pipeline in (train_set.dataset.pipeline, cfg.test_dataloader.dataset.pipeline):
            load = next(step for step in pipeline if step.type == 'LoadAnnotations')
            assert not load.get('with_mask', False)  # boxes only
        assert cfg.model.test_cfg.max_per_img == 300
        assert cfg.model.test_cfg.get('score_thr', 0.0) <= 1e-3
    if dataset in ('lvis-v1', 'digits-lt'):
        assert evaluator.type == 'LongTailMetric'
        assert evaluator.ann_file.endswith('lvis_v1_val.json')
    if dataset == 'digits-lt100':  # settings chosen on val, tables from test
        assert cfg.val_evaluator.type == evaluator.type == 'LongTailMetric'
        assert cfg.val_evaluator.ann_file.endswith('digits_lt100/annotations/lvis_v1_val.json')
        assert evaluator.ann_file.endswith('digits_lt100/annotations/lvis_v1_test.json')
        assert cfg.test_dataloader.dataset.ann_file == 'annotations/lvis_v1_test.json'
        assert cfg.model.backbone.init_cfg == dict(
            type='Pretrained', checkpoint='data/digits_lt100/pretrained/resnet18_w32_digits.pth')
        assert cfg.train_cfg.type == 'IterBasedTrainLoop' and cfg.train_cfg.max_iters == 800
    if dataset == 'voc0712':
        assert evaluator.type == 'VOCMetric'
    if dataset == 'digits-lt':
        assert cfg.model.backbone.init_cfg is None  # trains offline, from scratch
        assert cfg.train_cfg.max_epochs <= 12


@pytest.mark.parametrize('path', CONFIGS, ids=CONFIG_IDS)
def test_config_types_registered(path: Path):
    cfg = load_config(path)
    assert _skip_if_imbfocal_types_missing(cfg) == []


@pytest.mark.parametrize('path', CONFIGS, ids=CONFIG_IDS)
def test_config_trains_and_predicts(path: Path):
    """Build (prior init checked), one SGD step with finite losses, one inference step."""
    cfg = load_config(path)
    _skip_if_imbfocal_types_missing(cfg)
    shrink_model(cfg.model)
    set_class_counts(cfg.model)
    model = build_detector(cfg)
    bias = _classification_bias(model)
    torch.testing.assert_close(bias, torch.full_like(bias, PRIOR_BIAS))
    train_and_predict(cfg, model)


DIGITS_CONFIGS = [path for path in CONFIGS if path.stem.endswith(('_digits-lt', '_digits-lt100'))]


@pytest.mark.parametrize('path', DIGITS_CONFIGS, ids=_ids(DIGITS_CONFIGS))
def test_digits_lt_config_on_real_data(path: Path, request):
    """The digits-LT configs as shipped (no shrinking) on a tiny digits-LT build: their
    datasets and pipelines feed one training step (lt100: from the pretrained backbone they
    load); the whole val split is predicted and scored by the config's evaluator (APr/APc/APf
    reported)."""
    cfg = load_config(path)
    _skip_if_imbfocal_types_missing(cfg)
    lt100 = path.stem.endswith('_digits-lt100')
    options = request.getfixturevalue('digits_lt100_options' if lt100 else 'digits_lt_options')
    cfg.merge_from_dict(options())
    set_class_counts(cfg.model)  # ClassCountsHook's job in a run
    train_set = DATASETS.build(cfg.train_dataloader.dataset)
    val_set = DATASETS.build(cfg.val_dataloader.dataset)
    model = build_detector(cfg)
    if lt100:  # the backbone starts from the pretrained digit classifier
        state = torch.load(cfg.model.backbone.init_cfg.checkpoint, weights_only=True)
        torch.testing.assert_close(model.backbone.conv1.weight, state['state_dict']['conv1.weight'])
    with one_thread():
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        model.train()
        log_vars = model.train_step(pseudo_collate([train_set[0], train_set[1]]), optim_wrapper)
        assert all(torch.isfinite(value) for value in log_vars.values())

        evaluator = Evaluator(cfg.val_evaluator)
        evaluator.dataset_meta = val_set.metainfo
        model.eval()
        for index in range(len(val_set)):
            batch = pseudo_collate([val_set[index]])
            with torch.no_grad():
                evaluator.process(data_samples=model.val_step(batch), data_batch=batch)
        metrics = evaluator.evaluate(len(val_set))
    for key in ('bbox_mAP', 'bbox_APr', 'bbox_APc', 'bbox_APf'):
        assert any(name.endswith(key) for name in metrics), (key, sorted(metrics))


WEIGHTED_CONFIGS = [path for path in CONFIGS if _name_parts(path)[1] in ('cb-focal', 'afl')]


def _built_loss(path: Path):
    (loss_cfg, ) = classification_losses(load_config(path).model)
    return MODELS.build(loss_cfg)


@pytest.mark.parametrize('path', WEIGHTED_CONFIGS, ids=_ids(WEIGHTED_CONFIGS))
def test_class_weights_as_chosen_on_val(path: Path):
    """CB-focal and AFL train with the class weights chosen on lt100's val split, on the
    positive term (docs/benchmark.md): the heatmap forms beta 0.99, max_weight 2; CB-focal's
    sigmoid form beta 0.99, max_weight 1; AFL's sigmoid form none (beta 0: the damping alone
    measured the same as with class weights)."""
    loss = _built_loss(path)
    expected = {'ClassBalancedFocalLoss': (0.99, 1.0),
                'AdaptiveFocalLoss': (0.0, 2.0)}.get(type(loss).__name__, (0.99, 2.0))
    assert (loss.beta, loss.max_weight) == expected
    assert getattr(loss, 'weighting', 'positive') == 'positive'


AFL_CONFIGS = [path for path in CONFIGS if _name_parts(path)[1] == 'afl']


@pytest.mark.parametrize('path', AFL_CONFIGS, ids=_ids(AFL_CONFIGS))
def test_afl_damping_as_chosen_on_val(path: Path):
    """AFL's damping fades over the first half of the run from lam0 4 (sigmoid form) or 1
    (heatmap form), as chosen on lt100's val split (docs/benchmark.md)."""
    loss = _built_loss(path)
    expected = 4.0 if type(loss).__name__ == 'AdaptiveFocalLoss' else 1.0
    assert (loss.lam0, loss.agf_fraction, loss.agf_iters) == (expected, 0.5, None)


def test_centernet_lt100_keeps_the_objects_apart():
    """lt100's CenterNet: C5 at stride 8 (dilated, not strided) and a stride-4 heatmap, so the
    14-38 px objects of a 128x128 image do not share the 4x4 cells of MMDetection's stride-32
    C5 (val AP 0.2 there, docs/configs.md)."""
    cfg = load_config(CONFIG_ROOT / 'centernet/centernet_r18_focal_800it_digits-lt100.py')
    cfg.model.backbone.init_cfg = None
    model = build_detector(cfg).eval()
    with torch.no_grad(), one_thread():
        features = model.backbone(torch.zeros(1, 3, 128, 128))
        heatmaps, wh, offsets = model.bbox_head(model.neck(features))
    assert features[-1].shape[-2:] == (16, 16)  # C5: 128 / 8
    assert heatmaps[0].shape == (1, 100, 32, 32)  # 128 / 4
    assert wh[0].shape[-2:] == offsets[0].shape[-2:] == (32, 32)


def test_model_bases_match_mmdetection():
    """The FCOS/CenterNet model bases copy MMDetection's models (only intended changes)."""
    fcos = Config.fromfile(str(CONFIG_ROOT / '_base_/models/fcos_r50-caffe_fpn_gn-head.py'))
    mmdet_fcos = Config.fromfile(MMDET_CONFIGS / 'fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py')
    assert fcos.model.to_dict() == mmdet_fcos.model.to_dict()

    centernet = Config.fromfile(str(CONFIG_ROOT / '_base_/models/centernet_r18.py')).model
    mmdet_centernet = Config.fromfile(
        MMDET_CONFIGS / 'centernet/centernet_r18_8xb16-crop512-140e_coco.py').model
    assert centernet.bbox_head.pop('type') == 'CenterNetPriorHead'
    assert centernet.bbox_head.pop('prior_prob') == 0.01
    assert centernet.data_preprocessor.pop('pad_size_divisor') == 32
    mmdet_centernet.bbox_head.pop('type')
    # The same ImageNet file, named by its address instead of MMEngine's torchvision:// alias.
    mmdet_weights = mmdet_centernet.backbone.init_cfg.pop('checkpoint')
    assert mmdet_weights == 'torchvision://resnet18'
    assert centernet.backbone.init_cfg.pop('checkpoint') == _torchvision_files()['resnet18']
    assert centernet.to_dict() == mmdet_centernet.to_dict()


def _torchvision_files() -> dict:
    """MMEngine's table from a ``torchvision://NAME`` alias to the file's address."""
    import json

    import mmengine
    with open(Path(mmengine.__file__).parent / 'hub' / 'torchvision_0.12.json') as f:
        return json.load(f)


def _pretrained_checkpoints(node) -> list:
    """Every ``checkpoint`` of a ``Pretrained`` init_cfg in a config (any depth)."""
    if isinstance(node, dict):
        found = [node['checkpoint']] if node.get('type') == 'Pretrained' else []
        return found + [c for value in node.values() for c in _pretrained_checkpoints(value)]
    if isinstance(node, (list, tuple)):
        return [c for value in node for c in _pretrained_checkpoints(value)]
    return []


@pytest.mark.parametrize('path', CONFIGS, ids=_ids(CONFIGS))
def test_pretrained_weights_load_without_torchvision(path: Path):
    """MMEngine resolves 'torchvision://NAME' by importing torchvision, which has no build for
    the project's CPU torch; the configs name the same files by their address."""
    from mmengine.runner.checkpoint import CheckpointLoader
    torchvision_files = set(_torchvision_files().values())
    for checkpoint in _pretrained_checkpoints(load_config(path).to_dict()):
        assert not checkpoint.startswith('torchvision://'), checkpoint
        if checkpoint.startswith('https://download.pytorch.org/'):
            assert checkpoint in torchvision_files
            loader = CheckpointLoader._get_checkpoint_loader(checkpoint)
            assert loader.__name__ == 'load_from_http'


RETINANET_LT100 = [p for p in CONFIGS if p.name.startswith('retinanet') and 'lt100' in p.name]


@pytest.mark.parametrize('path', RETINANET_LT100, ids=_ids(RETINANET_LT100))
def test_retinanet_lt100_trains_on_the_tuned_schedule(path: Path):
    """Focal loss's schedule tuned on lt100's val split (docs/benchmark.md): a linear warm-up
    over 400 of the 800 iterations to lr 8e-3, cosine decay over the whole run."""
    cfg = load_config(path)
    warm_up, cosine = cfg.param_scheduler
    assert (warm_up.type, warm_up.end, cfg.optim_wrapper.optimizer.lr) == ('LinearLR', 400, 0.008)
    assert (cosine.type, cosine.end, cosine.T_max) == ('CosineAnnealingLR', 800, 800)
    assert cfg.train_cfg.max_iters == 800
