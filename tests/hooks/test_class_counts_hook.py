"""ClassCountsHook, counts from MMDetection dataset objects, and tools/class_counts.py on a
config."""
import importlib.util
import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mmdet.datasets import CocoDataset
from mmengine.dataset import ClassBalancedDataset, ConcatDataset, RepeatDataset
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

from imbfocal.class_counts import counts_from_dataset, load_class_counts
from imbfocal.hooks import ClassCountsHook
from imbfocal.losses import AdaptiveFocalLoss, ClassBalancedFocalLoss, GaussianAdaptiveFocalLoss

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ('ant', 'bee', 'cow')


def _box(ann_id, image_id, category_id, iscrowd=0):
    return dict(id=ann_id, image_id=image_id, category_id=category_id, bbox=[1, 1, 4, 4],
                area=16, iscrowd=iscrowd)


@pytest.fixture
def coco_json(tmp_path):
    """A COCO file MMDetection can load. Label order is the category order: ant, bee, cow.

    ant (id 10): image 1 x2, image 2 x1        -> 3 instances, 2 images
    bee (id 20): image 2 x1, + a crowd box     -> 1 instance,  1 image (crowd is ignored)
    cow (id 30): image 3 x4                    -> 4 instances, 1 image
    """
    anns = [_box(1, 1, 10), _box(2, 1, 10), _box(3, 2, 10), _box(4, 2, 20),
            _box(5, 3, 20, iscrowd=1)] + [_box(6 + i, 3, 30) for i in range(4)]
    data = dict(images=[dict(id=i, file_name=f'{i}.jpg', width=20, height=20) for i in (1, 2, 3)],
                categories=[dict(id=10 * (i + 1), name=n) for i, n in enumerate(CLASSES)],
                annotations=anns)
    path = tmp_path / 'train.json'
    path.write_text(json.dumps(data))
    return path


INSTANCES, IMAGES = [3, 1, 4], [2, 1, 1]


def _dataset(ann_file):
    return CocoDataset(ann_file=str(ann_file), data_prefix=dict(img=''), pipeline=[],
                       metainfo=dict(classes=CLASSES), test_mode=False, filter_cfg=None,
                       lazy_init=False)


class _Toy(nn.Module):

    def __init__(self, cls_counts=None):
        super().__init__()
        self.head = nn.Module()
        self.head.loss_cls = ClassBalancedFocalLoss(class_counts=cls_counts)
        self.head.loss_heatmap = GaussianAdaptiveFocalLoss(count_type='images')
        self.backbone = nn.Linear(2, 2)


def _run_hook(model, dataset, resume=False):
    """``before_train`` on a stand-in runner (``_resume`` is MMEngine's flag of a resumed run)."""
    runner = SimpleNamespace(model=model, train_dataloader=SimpleNamespace(dataset=dataset),
                             _resume=resume)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        ClassCountsHook().before_train(runner)
    finally:
        logger.removeHandler(handler)
    return [r.getMessage() for r in records]


def test_counts_from_coco_dataset(coco_json):
    dataset = _dataset(coco_json)
    assert counts_from_dataset(dataset, 'instances') == (INSTANCES, list(CLASSES))
    assert counts_from_dataset(dataset, 'images') == (IMAGES, list(CLASSES))
    # the json path counts the same file the same way
    assert load_class_counts(coco_json, 'instances') == (INSTANCES, list(CLASSES))
    assert load_class_counts(coco_json, 'images') == (IMAGES, list(CLASSES))


def test_counts_through_dataset_wrappers(coco_json):
    # Concat sums its parts; Repeat / ClassBalanced resample and are looked through, so each
    # distinct image counts once: [3, 1, 4] + [3, 1, 4] = [6, 2, 8].
    concat = ConcatDataset([_dataset(coco_json), _dataset(coco_json)])
    assert counts_from_dataset(concat)[0] == [6, 2, 8]
    assert counts_from_dataset(RepeatDataset(_dataset(coco_json), times=3))[0] == INSTANCES
    balanced = ClassBalancedDataset(_dataset(coco_json), oversample_thr=0.9)
    assert len(balanced) > 3  # rare images were repeated ...
    assert counts_from_dataset(balanced, 'images')[0] == IMAGES  # ... and not counted twice


@pytest.mark.parametrize('wrap', [False, True])
def test_hook_fills_missing_counts(coco_json, wrap):
    model = _Toy()
    wrapped = nn.DataParallel(model) if wrap else model  # a model wrapper, as DDP would be
    messages = _run_hook(wrapped, _dataset(coco_json))
    assert model.head.loss_cls.class_counts.tolist() == INSTANCES
    assert model.head.loss_heatmap.class_counts.tolist() == IMAGES  # its own count_type
    assert model.head.loss_cls.class_names == list(CLASSES)
    assert model.head.loss_cls.class_counts_source == 'ClassCountsHook'
    assert any('head.loss_cls <- training-set instances counts: 3 classes, min 1 (bee)' in m
               for m in messages), messages
    # the loss now runs
    model.head.loss_cls(torch.zeros(2, 3), torch.tensor([0, 3])).item()


def test_hook_keeps_configured_counts(coco_json):
    model = _Toy(cls_counts=[7, 8, 9])
    messages = _run_hook(model, _dataset(coco_json))
    assert model.head.loss_cls.class_counts.tolist() == [7, 8, 9]
    assert model.head.loss_heatmap.class_counts.tolist() == IMAGES
    assert any('head.loss_cls keeps its 3 class counts from the config' in m
               for m in messages), messages


def test_hook_keeps_counts_restored_from_checkpoint_on_resume(coco_json):
    # Runner.train() resumes (load_or_resume) before the loop's before_train hook runs, so
    # the hook sees counts restored from a checkpoint and must keep them.
    trained = _Toy(cls_counts=[11, 12, 13])
    trained.head.loss_heatmap.set_class_counts([1, 2, 3])
    resumed = _Toy()
    resumed.load_state_dict(trained.state_dict())
    messages = _run_hook(resumed, _dataset(coco_json), resume=True)
    assert resumed.head.loss_cls.class_counts.tolist() == [11, 12, 13]
    assert resumed.head.loss_heatmap.class_counts.tolist() == [1, 2, 3]
    assert any('keeps the 3 class counts it resumed with' in m for m in messages), messages


def test_hook_recounts_checkpoint_counts_when_fine_tuning(coco_json):
    """load_from a model trained on another dataset (same number of classes): fine-tuning
    counts the new training set, and says that the checkpoint's counts differed."""
    other = _Toy(cls_counts=[50, 50, 50])
    other.head.loss_heatmap.set_class_counts([5, 5, 5])
    model = _Toy()
    model.load_state_dict(other.state_dict())
    messages = _run_hook(model, _dataset(coco_json))
    assert model.head.loss_cls.class_counts.tolist() == INSTANCES
    assert model.head.loss_cls.class_counts_source == 'ClassCountsHook'
    assert any('load_from checkpoint had other class counts' in m for m in messages), messages


def test_hook_recounts_checkpoint_counts_of_another_dataset(coco_json):
    # resumed with 2 classes onto the 3-class dataset: the counts cannot be used.
    other = _Toy(cls_counts=[5, 5])
    other.head.loss_heatmap.set_class_counts([5, 5])
    model = _Toy()
    model.load_state_dict(other.state_dict())
    messages = _run_hook(model, _dataset(coco_json), resume=True)
    assert model.head.loss_cls.class_counts.tolist() == INSTANCES
    assert any('2 class counts resumed from the checkpoint but the training dataset has 3'
               in m for m in messages), messages


def test_configured_counts_win_over_a_checkpoint(coco_json):
    """A user who configures class_counts fine-tunes from a checkpoint of other counts: the
    configured ones stay (load_state_dict and the hook), and a warning names both."""
    trained = _Toy(cls_counts=[11, 12, 13])
    model = _Toy(cls_counts=[7, 8, 9])
    with pytest.warns(UserWarning, match=r'other class counts \(3 classes, 36 in all.*'
                      r'than the config \(3 classes, 24 in all.*configured counts are kept'):
        model.load_state_dict(trained.state_dict())
    assert model.head.loss_cls.class_counts.tolist() == [7, 8, 9]
    assert model.head.loss_cls.class_counts_source == 'config'
    for resume in (False, True):
        _run_hook(model, _dataset(coco_json), resume=resume)
        assert model.head.loss_cls.class_counts.tolist() == [7, 8, 9]


def test_configured_count_type_is_not_replaced_by_a_checkpoint(coco_json):
    """The same classes, count_type changed to 'images' in the config: the checkpoint's
    instance counts must not come back through load_state_dict."""
    trained = _Toy(cls_counts=INSTANCES)
    model = _Toy(cls_counts=IMAGES)
    with pytest.warns(UserWarning, match='configured counts are kept'):
        model.load_state_dict(trained.state_dict())
    assert model.head.loss_cls.class_counts.tolist() == IMAGES


def test_configured_class_names_are_compared_with_the_dataset(coco_json, tmp_path):
    from imbfocal.class_counts import save_class_counts
    counts_file = tmp_path / 'counts.json'
    save_class_counts(counts_file, [1, 2, 3], ['ant', 'bee', 'yak'], 'instances')
    model = _Toy(cls_counts=str(counts_file))
    messages = _run_hook(model, _dataset(coco_json))
    assert any("differ at 1 positions, first [(2, 'yak', 'cow')]" in m for m in messages), \
        messages


@pytest.mark.parametrize('bad', [[-5, 1, 2], [float('nan'), 1.0, 2.0], [1.5, 2.0, 3.0]])
def test_checkpoint_counts_are_validated(bad):
    model = _Toy()
    state = model.state_dict()
    state['head.loss_cls.class_counts'] = torch.tensor(bad)
    with pytest.raises(ValueError, match='class_counts in the checkpoint'):
        model.load_state_dict(state, strict=False)


def test_hook_warns_without_count_losses(coco_json):
    messages = _run_hook(nn.Linear(2, 2), _dataset(coco_json))
    assert any('no loss that takes class counts' in m for m in messages)


def test_count_type_is_refused_with_where_it_goes():
    from mmdet.registry import HOOKS
    with pytest.raises(ValueError, match=r"loss_cls=dict\(\.\.\., count_type='images'\)"):
        HOOKS.build(dict(type='ClassCountsHook', count_type='images'))
    assert isinstance(HOOKS.build(dict(type='ClassCountsHook')), ClassCountsHook)


def test_cli_from_config(coco_json, tmp_path):
    config = tmp_path / 'cfg.py'
    config.write_text(f"""
train_dataloader = dict(dataset=dict(
    type='CocoDataset', ann_file={str(coco_json)!r}, data_prefix=dict(img=''), pipeline=[],
    metainfo=dict(classes={CLASSES!r}), filter_cfg=None))
""")
    spec = importlib.util.spec_from_file_location('class_counts_cli',
                                                  ROOT / 'tools' / 'class_counts.py')
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    out = tmp_path / 'counts.json'
    # --cfg-options reaches the dataset: a class subset relabels and drops 'bee'.
    cli.main([str(config), '--out', str(out), '--count-type', 'images', '--cfg-options',
              "train_dataloader.dataset.metainfo.classes=['ant','cow']"])
    assert load_class_counts(out, 'images') == ([2, 1], ['ant', 'cow'])
    cli.main([str(config), '--out', str(out)])
    assert load_class_counts(out, 'instances') == (INSTANCES, list(CLASSES))


class _RunnerToy(BaseModel):
    """Fixed logits through a linear layer; the loss is an AFL relying on the hook."""

    def __init__(self):
        super().__init__()
        self.cls = nn.Linear(3, 3)
        self.loss_cls = AdaptiveFocalLoss(agf_iters=10)

    def forward(self, inputs=None, data_samples=None, mode='tensor', **kwargs):
        logits = self.cls(torch.eye(3))
        return dict(loss_cls=self.loss_cls(logits, torch.tensor([0, 2, 3])))


def _runner(work_dir, coco_json, max_iters, resume):
    return Runner(model=_RunnerToy(), work_dir=str(work_dir),
                  train_dataloader=dict(dataset=_dataset(coco_json), batch_size=1,
                                        sampler=dict(type='DefaultSampler', shuffle=False),
                                        collate_fn=dict(type='pseudo_collate')),
                  train_cfg=dict(by_epoch=False, max_iters=max_iters),
                  optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
                  default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2,
                                                     by_epoch=False)),
                  custom_hooks=[dict(type='ClassCountsHook')], resume=resume,
                  default_scope='mmdet', experiment_name=f'toy_{max_iters}')


def test_hook_in_runner_and_resume(coco_json, tmp_path):
    # A real MMEngine run: the hook fills the counts, AFL reads the iteration from the message
    # hub (the last of 2 iterations is iter 1), and both are in the checkpoint.
    model = _runner(tmp_path, coco_json, 2, resume=False).train()
    assert model.loss_cls.class_counts.tolist() == INSTANCES
    assert model.loss_cls.agf_iter.item() == 1
    state = torch.load(tmp_path / 'iter_2.pth', weights_only=True)['state_dict']
    assert state['loss_cls.class_counts'].tolist() == INSTANCES
    # Resume: load_or_resume restores the buffers before before_train, so the hook keeps them.
    runner = _runner(tmp_path, coco_json, 4, resume=True)
    model = runner.train()
    assert model.loss_cls.class_counts_source == 'checkpoint'
    assert model.loss_cls.agf_iter.item() == 3
