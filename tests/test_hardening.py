"""A demanding user's expectations under bad input, faults and edge cases.

Each test is written as what the user expects; the class-count ones (a checkpoint never
replaces configured counts, counts are validated) are in tests/hooks/test_class_counts_hook.py
and the heatmap PF with ``CenterNetUpdateHead`` in tests/losses/test_contract.py.
"""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from imbfocal.losses import (
    AdaptiveFocalLoss,
    ClassBalancedFocalLoss,
    DualFocalLoss,
    EqualizedFocalLoss,
    ParameterFreeLoss,
)

ROOT = Path(__file__).resolve().parents[1]
C = 4
FOCAL_FAMILY = {
    'ClassBalancedFocalLoss': lambda: ClassBalancedFocalLoss(class_counts=[9, 5, 3, 1]),
    'AdaptiveFocalLoss': lambda: AdaptiveFocalLoss(class_counts=[9, 5, 3, 1], agf_iters=10),
    'DualFocalLoss': DualFocalLoss,
    'EqualizedFocalLoss': EqualizedFocalLoss,
}
DENSE = dict(FOCAL_FAMILY, ParameterFreeLoss=ParameterFreeLoss)


def _tool(name, *args, cwd=None):
    return subprocess.run([sys.executable, str(ROOT / 'tools' / name), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


# --- labels and targets: the contract's message, never silent background ----------------------


@pytest.mark.parametrize('name', DENSE)
@pytest.mark.parametrize('bad', [-1, C + 1, 100])
def test_out_of_range_labels_raise(name, bad):
    labels = torch.tensor([0, 1, C, bad])
    with pytest.raises(ValueError, match=rf'labels must lie in \[0, {C}\]'):
        DENSE[name]()(torch.zeros(4, C), labels)
    # on an ignored anchor (weight 0) any label is fine, as MMDetection's heads mark them
    DENSE[name]()(torch.zeros(4, C), labels, weight=torch.tensor([1.0, 1.0, 1.0, 0.0]))


@pytest.mark.parametrize('name', DENSE)
@pytest.mark.parametrize('dtype', [torch.bool, torch.uint8])
def test_non_integer_index_labels_are_named(name, dtype):
    with pytest.raises(ValueError, match=r'labels must be int64 \(or int32\).*labels\.long\(\)'):
        DENSE[name]()(torch.zeros(4, C), torch.tensor([0, 1, 1, 0], dtype=dtype))


@pytest.mark.parametrize('name', DENSE)
def test_integer_one_hot_targets_are_named(name):
    one_hot = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3]), C)
    with pytest.raises(ValueError, match=r'must be floating point.*target\.float\(\)'):
        DENSE[name]()(torch.zeros(4, C), one_hot)


@pytest.mark.parametrize('name', DENSE)
def test_malformed_label_shapes_are_named(name):
    with pytest.raises(ValueError, match='labels of shape'):
        DENSE[name]()(torch.zeros(4, C), torch.zeros(3, dtype=torch.long))


@pytest.mark.parametrize('name', DENSE)
def test_soft_targets_outside_unit_interval_and_negative_weights_raise(name):
    soft = torch.full((4, C), 0.5)
    soft[0, 0] = 1.5
    with pytest.raises(ValueError, match=r'targets must lie in \[0, 1\]'):
        DENSE[name]()(torch.zeros(4, C), soft)
    with pytest.raises(ValueError, match='weights must be >= 0'):
        DENSE[name]()(torch.zeros(4, C), torch.tensor([0, 1, 2, 3]),
                      weight=torch.tensor([1.0, -1.0, 1.0, 1.0]))


@pytest.mark.parametrize('gamma', [0.5, -1.0])
@pytest.mark.parametrize('loss', [ClassBalancedFocalLoss, AdaptiveFocalLoss])
def test_class_balanced_gamma_is_checked(loss, gamma):
    with pytest.raises(ValueError, match='gamma must be 0 or at least 1'):
        loss(gamma=gamma, class_counts=[1, 2])


# --- EFL: one bad batch never poisons the run ---------------------------------------------------


def test_a_non_finite_batch_does_not_poison_efl_statistics():
    efl = EqualizedFocalLoss(num_classes=C).train()
    labels = torch.tensor([0, 1, 2, 3, C, C])
    efl(torch.randn(6, C), labels)
    before = efl.state_dict()
    bad = torch.randn(6, C)
    bad[0, 0] = -float('inf')  # fp16 overflows under AMP, on a positive and on a negative
    bad[4, 2] = float('inf')
    with pytest.warns(UserWarning, match='non-finite gradient statistics'):
        efl(bad, labels)
    assert all(torch.isfinite(t).all() for t in efl.state_dict().values())
    assert (efl.pos_grad >= before['pos_grad']).all()  # the finite classes still counted
    value = efl(torch.randn(6, C), labels)  # and the next step trains normally
    assert torch.isfinite(value) and (efl.class_factors()[0] < 1).any()


@pytest.mark.parametrize('cast', ['half', 'bfloat16'])
def test_efl_statistics_stay_float32_under_half_casts(cast):
    """In float16, G- reached inf after 5 steps of 20,000 x 8 anchors: every g_j became 0."""
    efl = EqualizedFocalLoss(num_classes=8).train()
    efl.neg_grad.fill_(1e5)
    efl.pos_grad.fill_(3e-3)
    getattr(efl, cast)()
    assert efl.pos_grad.dtype == efl.neg_grad.dtype == torch.float32
    assert efl.pos_grad[0].item() == pytest.approx(3e-3)  # not rounded to half precision
    logits = torch.zeros(20_000, 8, dtype=getattr(torch, 'float16' if cast == 'half'
                                                  else 'bfloat16'))
    for _ in range(5):
        efl(logits, torch.full((20_000, ), 8))
    assert torch.isfinite(efl.neg_grad).all() and (efl.class_factors()[0] > 0).all()


# --- tools never lose a user's files ------------------------------------------------------------


def test_make_digits_lt_refuses_a_folder_of_someone_elses_files(tmp_path):
    out = tmp_path / 'mine'
    (out / 'train').mkdir(parents=True)
    (out / 'train' / '000001.png').write_bytes(b'my holiday photo')
    (out / 'notes.txt').write_text('mine')
    result = _tool('make_digits_lt.py', '--out', out, '--train-images', 30, '--val-images', 10,
                   '--max-class-images', 20, '--val-class-images', 3, '--image-size', 64)
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert 'holds no digits-LT build' in result.stderr and '--force' in result.stderr
    assert (out / 'train' / '000001.png').read_bytes() == b'my holiday photo'
    assert (out / 'notes.txt').read_text() == 'mine'


def test_make_digits_lt_survives_a_truncated_meta_json(tmp_path):
    args = ['--out', tmp_path / 'b', '--train-images', 30, '--val-images', 10,
            '--max-class-images', 20, '--val-class-images', 3, '--image-size', 64]
    assert _tool('make_digits_lt.py', *args).returncode == 0
    meta = tmp_path / 'b' / 'meta.json'
    meta.write_text(meta.read_text()[:40])  # an interrupted write
    result = _tool('make_digits_lt.py', *args)
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert _tool('make_digits_lt.py', *args, '--force').returncode == 0
    assert json.loads(meta.read_text())['generator'] == 'imbfocal.datasets.digits_lt'


def test_class_counts_tool_never_replaces_an_annotation_file(tmp_path):
    ann = tmp_path / 'ann.json'
    ann.write_text(json.dumps(dict(images=[dict(id=1)], categories=[dict(id=1, name='a')],
                                   annotations=[dict(id=1, image_id=1, category_id=1)])))
    original = ann.read_text()
    result = _tool('class_counts.py', ann, '--out', ann)
    assert result.returncode == 2 and 'source file itself' in result.stderr
    other = tmp_path / 'other.json'
    other.write_text('{"not": "counts"}')
    result = _tool('class_counts.py', ann, '--out', other)
    assert result.returncode == 2 and 'not a counts file' in result.stderr
    assert ann.read_text() == original and other.read_text() == '{"not": "counts"}'
    counts = tmp_path / 'counts.json'
    assert _tool('class_counts.py', ann, '--out', counts).returncode == 0
    assert _tool('class_counts.py', ann, '--out', counts).returncode == 0  # a counts file
    result = _tool('class_counts.py', ann, '--out', tmp_path / 'no' / 'such' / 'dir.json')
    assert result.returncode == 2 and 'Traceback' not in result.stderr


# --- LongTailMetric fails at build time, not hours into a run ------------------------------------


def test_metric_checks_its_frequency_source_when_built(tmp_path):
    from imbfocal.evaluation import LongTailMetric
    with pytest.raises(FileNotFoundError, match='does not exist'):
        LongTailMetric(train_ann_file=str(tmp_path / 'missing.json'))
    with pytest.raises(ValueError, match="frequency must be"):
        LongTailMetric(class_frequency={'a': 'x'})
    with pytest.raises(ValueError, match='max_dets'):
        LongTailMetric(class_frequency={'a': 3}, max_dets=0)


def test_metric_rejects_unknown_lvis_frequencies(tmp_path):
    from imbfocal.evaluation import LongTailMetric
    ann = tmp_path / 'lvis.json'
    ann.write_text(json.dumps(dict(
        images=[dict(id=1, width=8, height=8, neg_category_ids=[],
                     not_exhaustive_category_ids=[])],
        categories=[dict(id=1, name='a', frequency='x')], annotations=[])))
    with pytest.raises(ValueError, match=r"category frequency must be one of \('r', 'c', 'f'\)"):
        LongTailMetric(ann_file=str(ann))


def test_metric_does_not_score_label_minus_one_as_the_last_class(tiny_digits_lt):
    """A detection labelled -1 is left out (with a warning), not scored as class '9'."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    from imbfocal.evaluation import LongTailMetric
    ann_file = os.path.join(tiny_digits_lt, 'annotations', 'lvis_v1_val.json')
    with open(ann_file, encoding='utf-8') as f:
        ann = json.load(f)
    classes = tuple(c['name'] for c in ann['categories'])

    def evaluate(extra_label):
        metric = LongTailMetric(ann_file=ann_file)
        metric.dataset_meta = dict(classes=classes)
        samples = []
        for img in ann['images']:
            boxes = [a['bbox'] for a in ann['annotations'] if a['image_id'] == img['id']]
            labels = [a['category_id'] - 1 for a in ann['annotations']
                      if a['image_id'] == img['id']]
            pred = InstanceData(
                bboxes=torch.tensor([[x, y, x + w, y + h] for x, y, w, h in boxes] +
                                    [[0.0, 0.0, 20.0, 20.0]]),
                scores=torch.ones(len(boxes) + 1),
                labels=torch.tensor(labels + [extra_label]))
            sample = DetDataSample(metainfo=dict(img_id=img['id'], ori_shape=(64, 64)))
            sample.pred_instances = pred
            samples.append(sample.to_dict())
        metric.process({}, samples)
        return metric.evaluate(len(samples))

    with_minus_one = evaluate(-1)
    assert with_minus_one['lvis/bbox_mAP'] == pytest.approx(1.0)


# --- python -m imbfocal.configs: names with their folder, errors that say something ----------


def test_configs_cli_takes_detector_folders_and_says_where_a_name_is(capsys):
    """``path retinanet/NAME`` was refused with "e.g. []"; ``list`` without a match printed
    nothing and exited 0."""
    from imbfocal.configs import main
    name = 'retinanet_r18_fpn_afl_800it_digits-lt100'
    assert main(['path', f'retinanet/{name}']) == 0
    assert capsys.readouterr().out.strip().endswith(f'configs/retinanet/{name}.py')
    assert main(['path', f'fcos/{name}']) == 2
    assert capsys.readouterr().err == (f"error: no shipped config named 'fcos/{name}'; {name} "
                                       f'is under retinanet/: retinanet/{name}\n')
    assert main(['path', 'retinanet/retinanet_r18_fpn_afl_800it_digits-lt10']) == 2
    assert f"closest: ['{name}'" in capsys.readouterr().err
    assert main(['list', 'no-such-pattern']) == 1
    captured = capsys.readouterr()
    assert captured.out == '' and "no shipped config name contains 'no-such-pattern'" in \
        captured.err
    assert main(['list', 'retinanet/afl_800it']) == 0  # the folder as `path` takes it
    assert capsys.readouterr().out.split() == ['retinanet_r18_fpn_afl_800it_digits-lt100']
    assert main(['list', 'fcos/retinanet']) == 1
    capsys.readouterr()


# --- configs travel with the package ------------------------------------------------------------


def test_a_wheel_carries_the_configs(tmp_path):
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', str(ROOT), '--no-deps',
                    '--no-build-isolation', '-q', '-w', str(tmp_path)], check=True,
                   capture_output=True, timeout=300)
    (wheel, ) = tmp_path.glob('imbfocal-*.whl')
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(p.relative_to(ROOT / 'configs').as_posix()
                     for p in (ROOT / 'configs').rglob('*.py'))
    assert shipped and all(f'imbfocal/.mim/configs/{p}' in names for p in shipped)


def test_configs_are_found_and_copied_in_one_line(tmp_path):
    from mmengine.config import Config

    from imbfocal.configs import config_path, copy_config, list_configs
    name = 'retinanet_r18_fpn_afl_800it_digits-lt100'
    assert name in list_configs('lt100')
    assert Config.fromfile(str(config_path(name))).model.bbox_head.num_classes == 100
    out = copy_config(name, str(tmp_path))
    cfg = Config.fromfile(str(out))  # standalone: bases resolved
    assert cfg.model.bbox_head.loss_cls.type == 'AdaptiveFocalLoss' and '_base_' not in cfg
    with pytest.raises(FileExistsError):
        copy_config(name, str(tmp_path))  # never over a user's file
    result = subprocess.run([sys.executable, '-m', 'imbfocal.configs', 'path', 'nope'],
                            capture_output=True, text=True, cwd=str(ROOT))
    assert result.returncode == 2 and 'no shipped config' in result.stderr
