"""digits-LT generator, its CLI and the datasets that read it."""
import filecmp
import importlib.util
import json
import os
import re
from collections import defaultdict

import cv2
import numpy as np
import pytest

from imbfocal.datasets.digits_lt import (
    CLASSES,
    DigitsLTConfig,
    generate_digits_lt,
    long_tail_counts,
    train_class_image_counts,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Small and quick; the same shape of profile as the default preset.
SMALL = dict(train_images=60, val_images=20, max_class_images=40, imbalance_factor=20.0,
             val_class_images=5, image_size=96, digit_size=(16, 32))


def load(out, name):
    with open(os.path.join(out, 'annotations', name), encoding='utf-8') as f:
        return json.load(f)


def per_class_stats(ann):
    images, instances = defaultdict(set), defaultdict(int)
    for a in ann['annotations']:
        images[a['category_id']].add(a['image_id'])
        instances[a['category_id']] += 1
    return {c: len(v) for c, v in images.items()}, dict(instances)


@pytest.fixture(scope='module')
def small_build(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('dlt') / 'a')
    meta = generate_digits_lt(out, DigitsLTConfig(seed=0, **SMALL))
    return out, meta


def test_same_seed_same_files_other_seed_differs(small_build, tmp_path):
    out, _ = small_build
    again, other = str(tmp_path / 'again'), str(tmp_path / 'other')
    generate_digits_lt(again, DigitsLTConfig(seed=0, **SMALL))
    generate_digits_lt(other, DigitsLTConfig(seed=1, **SMALL))
    for rel in ('annotations/instances_train.json', 'annotations/lvis_v1_val.json',
                'train/000001.png', 'val/000007.png'):
        assert filecmp.cmp(os.path.join(out, rel), os.path.join(again, rel), shallow=False)
    assert not filecmp.cmp(os.path.join(out, 'train/000001.png'),
                           os.path.join(other, 'train/000001.png'), shallow=False)
    assert load(out, 'instances_train.json') != load(other, 'instances_train.json')


def test_source_digits_disjoint_between_splits(small_build):
    _, meta = small_build
    train, val = set(meta['train']['source_indices']), set(meta['val']['source_indices'])
    assert train and val and not train & val


def test_train_long_tailed_and_val_balanced(small_build):
    out, meta = small_build
    expected = long_tail_counts(40, 20.0)  # class d has rank d ('fixed' order)
    train_imgs, train_inst = per_class_stats(load(out, 'instances_train.json'))
    assert [train_imgs[d + 1] for d in range(10)] == expected
    assert all(train_inst[c] >= train_imgs[c] for c in train_imgs)
    val_imgs, _ = per_class_stats(load(out, 'instances_val.json'))
    assert [val_imgs[d + 1] for d in range(10)] == [5] * 10
    assert meta['train']['image_counts'] == dict(zip(CLASSES, expected))
    # The default preset: IF 100 from 500 images down to 5, two LVIS-rare classes.
    default = train_class_image_counts(DigitsLTConfig())
    assert default == [500, 300, 180, 108, 65, 39, 23, 14, 8, 5]
    assert default[0] / default[-1] == 100


def test_lvis_fields(small_build):
    out, _ = small_build
    train, val = load(out, 'lvis_v1_train.json'), load(out, 'lvis_v1_val.json')
    imgs, inst = per_class_stats(train)
    assert train['categories'] == val['categories']  # train statistics in both, as LVIS
    for cat in train['categories']:
        assert cat['image_count'] == imgs[cat['id']]
        assert cat['instance_count'] == inst[cat['id']]
        n = cat['image_count']
        assert cat['frequency'] == ('r' if n <= 10 else 'c' if n <= 100 else 'f')
        assert cat['name'] == CLASSES[cat['id'] - 1] and cat['synset']
    assert {c['frequency'] for c in train['categories']} == {'r', 'c'}  # 40 images max
    assert sum(c['frequency'] == 'r' for c in train['categories']) >= 2
    for split, data in (('train', train), ('val', val)):
        present = defaultdict(set)
        for a in data['annotations']:
            present[a['image_id']].add(a['category_id'])
            assert set(a) >= {'id', 'image_id', 'category_id', 'bbox', 'area'}
        for img in data['images']:
            assert img['not_exhaustive_category_ids'] == []
            assert set(img['neg_category_ids']) == set(range(1, 11)) - present[img['id']]
            # LVIS's convention: the path from the data root in coco_url, no file_name
            assert img['coco_url'] == f"{split}/{img['id']:06d}.png" and 'file_name' not in img


def test_boxes_inside_images_and_around_ink(small_build):
    out, _ = small_build
    for split in ('train', 'val'):
        ann = load(out, f'instances_{split}.json')
        sizes = {i['id']: (i['width'], i['height']) for i in ann['images']}
        for i in ann['images'][:5]:
            # COCO's convention: the name in the split's folder (data_prefix=dict(img='train/'))
            assert i['file_name'] == f"{i['id']:06d}.png"
            img = cv2.imread(os.path.join(out, split, i['file_name']), cv2.IMREAD_GRAYSCALE)
            assert img.shape == (i['height'], i['width'])
        for a in ann['annotations']:
            x, y, w, h = a['bbox']
            W, H = sizes[a['image_id']]
            assert 0 <= x and 0 <= y and x + w <= W and y + h <= H and w >= 1 and h >= 1
            assert a['area'] == w * h and a['iscrowd'] == 0
    first = ann['annotations'][0]
    img = cv2.imread(os.path.join(out, 'val', '000001.png'), cv2.IMREAD_GRAYSCALE)
    x, y, w, h = first['bbox']
    assert img[y:y + h, x:x + w].min() < img.mean() - 40  # dark ink inside the box


def test_cli_is_idempotent(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location('make_digits_lt',
                                                  os.path.join(REPO, 'tools', 'make_digits_lt.py'))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    out = str(tmp_path / 'cli')
    args = ['--out', out, '--train-images', '30', '--val-images', '10', '--max-class-images',
            '20', '--val-class-images', '3', '--image-size', '64', '--seed', '3']
    assert cli.main(args) == 0
    meta = os.path.join(out, 'meta.json')
    stamp = os.stat(meta).st_mtime_ns
    with open(meta, encoding='utf-8') as f:
        built = json.load(f)
    assert built['params']['imbalance_factor'] == 100.0
    printed = capsys.readouterr().out
    assert '30 train / 10 val' in printed
    if 'test' in built:
        assert f"/ {built['test']['images']} test images" in printed
    else:
        assert '10 val images' in printed
    assert cli.main(args) == 0
    assert 'up to date' in capsys.readouterr().out
    assert os.stat(meta).st_mtime_ns == stamp
    assert cli.main(args[:-1] + ['4']) == 0  # another seed: regenerated
    assert os.stat(meta).st_mtime_ns != stamp


def test_fast_lvis_and_coco_datasets_agree(small_build):
    from mmdet.datasets import CocoDataset

    from imbfocal.datasets import FastLVISV1Dataset
    out, _ = small_build
    meta = dict(classes=CLASSES)
    coco = CocoDataset(data_root=out, ann_file='annotations/instances_train.json',
                       data_prefix=dict(img='train/'), metainfo=meta, pipeline=[])
    lvis = FastLVISV1Dataset(data_root=out, ann_file='annotations/lvis_v1_train.json',
                             data_prefix=dict(img=''), metainfo=meta, pipeline=[])
    assert len(coco) == len(lvis) == 60
    for i in range(len(coco)):
        a, b = coco.get_data_info(i), lvis.get_data_info(i)
        assert a['img_path'] == b['img_path'] and os.path.isfile(a['img_path'])
        assert a['img_id'] == b['img_id']
        assert [(x['bbox'], x['bbox_label']) for x in a['instances']] == \
            [(x['bbox'], x['bbox_label']) for x in b['instances']]
    with pytest.raises(ValueError, match='metainfo'):
        FastLVISV1Dataset(data_root=out, ann_file='annotations/lvis_v1_train.json',
                          data_prefix=dict(img=''), pipeline=[])  # 1,203 LVIS names


def test_class_names_parsed_into_numbers_by_cfg_options_are_restored(small_build):
    """``--cfg-options ...metainfo.classes="('0','1',...)"`` arrives as ints (MMEngine's
    DictAction strips the quotes): the dataset keeps the file's names."""
    import argparse

    from mmengine.config import DictAction

    from imbfocal.datasets import FastLVISV1Dataset
    out, _ = small_build
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    classes = parser.parse_args(['--cfg-options', 'c=' + str(CLASSES)]).cfg_options['c']
    assert classes == tuple(range(10))
    dataset = FastLVISV1Dataset(data_root=out, ann_file='annotations/lvis_v1_train.json',
                                data_prefix=dict(img=''), metainfo=dict(classes=classes),
                                pipeline=[])
    assert dataset.metainfo['classes'] == CLASSES and len(dataset) == 60
    with pytest.raises(ValueError, match='as numbers'):
        FastLVISV1Dataset(data_root=out, ann_file='annotations/lvis_v1_train.json',
                          data_prefix=dict(img=''), metainfo=dict(classes=tuple(range(1, 11))),
                          pipeline=[])


def test_config_validation():
    with pytest.raises(ValueError, match='preset'):
        DigitsLTConfig.from_preset('huge')
    with pytest.raises(ValueError, match='cannot place'):
        generate_digits_lt('/nonexistent/never', DigitsLTConfig(train_images=10,
                                                                max_class_images=40))
    assert np.isclose(DigitsLTConfig.from_preset('large').imbalance_factor, 1000)


@pytest.mark.parametrize('fmt', ['lvis', 'coco'])
def test_long_tail_metric_on_digits_lt_perfect_detections(small_build, fmt):
    """Ground truth as detections: AP 1 in every group that has classes (no 'f' here)."""
    import torch
    from mmdet.structures import DetDataSample
    from mmengine.evaluator import Evaluator
    from mmengine.structures import InstanceData

    from imbfocal.evaluation import LongTailMetric
    out, _ = small_build
    name = 'lvis_v1_val.json' if fmt == 'lvis' else 'instances_val.json'
    metric = LongTailMetric(ann_file=os.path.join(out, 'annotations', name),
                            train_ann_file=os.path.join(out, 'annotations',
                                                        'instances_train.json'))
    assert metric.lvis_mode == (fmt == 'lvis')
    samples = []
    for img in load(out, name)['images']:
        anns = [a for a in load(out, name)['annotations'] if a['image_id'] == img['id']]
        sample = DetDataSample(metainfo=dict(img_id=img['id'], ori_shape=(96, 96)))
        pred = InstanceData()
        pred.bboxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in
                                    (a['bbox'] for a in anns)], dtype=torch.float32)
        pred.scores = torch.ones(len(anns))
        pred.labels = torch.tensor([a['category_id'] - 1 for a in anns])
        sample.pred_instances = pred
        samples.append(sample)
    evaluator = Evaluator([metric])
    evaluator.dataset_meta = dict(classes=CLASSES)
    evaluator.process(data_samples=samples)
    res = evaluator.evaluate(len(samples))
    prefix = f'{fmt}/bbox_'
    assert res[prefix + 'mAP'] == pytest.approx(1.0)
    assert (res[prefix + 'APr'], res[prefix + 'APc']) == pytest.approx((1.0, 1.0))
    assert res[prefix + 'APf'] == -1.0


def test_foreign_files_are_never_deleted(tmp_path):
    """A folder holding a user's file is refused; ``force`` writes into it but still deletes
    nothing a build did not write."""
    (tmp_path / 'train').mkdir()
    (tmp_path / 'train' / 'mine.jpg').write_bytes(b'x')
    with pytest.raises(FileExistsError, match='holds no digits-LT build.*--force'):
        generate_digits_lt(str(tmp_path), DigitsLTConfig(**SMALL))
    with pytest.raises(FileExistsError, match="did not write.*'mine.jpg'"):
        generate_digits_lt(str(tmp_path), DigitsLTConfig(**SMALL), force=True)
    assert (tmp_path / 'train' / 'mine.jpg').read_bytes() == b'x'


# --- a build is checked first, written beside the output folder and swapped in whole ---------

def _snapshot(folder):
    """Every file under ``folder`` (relative path -> bytes)."""
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, 'rb') as f:
                files[os.path.relpath(path, folder)] = f.read()
    return files


@pytest.fixture
def built(tmp_path):
    out = tmp_path / 'out'
    generate_digits_lt(str(out), DigitsLTConfig(seed=0, **SMALL))
    return out


def test_a_foreign_file_in_val_stops_the_build_before_train_is_touched(built):
    """The generator used to clear and rewrite train/ and its annotations, then stop at a
    foreign file in val/: a build half new (seed 1), half old (seed 0)."""
    (built / 'val' / 'notes.txt').write_text('mine')
    before = _snapshot(built)
    with pytest.raises(FileExistsError, match=r"val holds files digits-LT did not write "
                       r"\(e\.g\. 'notes\.txt'\)"):
        generate_digits_lt(str(built), DigitsLTConfig(seed=1, **SMALL))
    assert _snapshot(built) == before
    assert os.listdir(built.parent) == ['out']  # nothing left beside it


def test_an_interrupted_build_leaves_the_earlier_one_whole(built, monkeypatch):
    from imbfocal.datasets import digits_lt
    render = digits_lt._render_split

    def render_train_then_fail(cfg, split, *args):
        if split == 'val':
            raise KeyboardInterrupt  # Ctrl-C after train/ was rendered
        return render(cfg, split, *args)

    monkeypatch.setattr(digits_lt, '_render_split', render_train_then_fail)
    before = _snapshot(built)
    with pytest.raises(KeyboardInterrupt):
        generate_digits_lt(str(built), DigitsLTConfig(seed=1, **SMALL))
    assert _snapshot(built) == before
    assert os.listdir(built.parent) == ['out']


def test_a_new_build_replaces_the_old_whole_and_keeps_what_lies_beside_it(built):
    (built / 'pretrained').mkdir()
    (built / 'pretrained' / 'backbone.pth').write_bytes(b'weights')
    (built / 'annotations' / 'my_counts.json').write_text('{}')
    three = dict(SMALL, test_images=20, test_class_images=5)
    generate_digits_lt(str(built), DigitsLTConfig(seed=1, **three))
    assert (built / 'test' / '000001.png').is_file()
    generate_digits_lt(str(built), DigitsLTConfig(seed=2, **SMALL))  # back to two splits
    assert not (built / 'test').exists()  # the earlier build's split is not left behind
    assert not (built / 'annotations' / 'lvis_v1_test.json').exists()
    assert json.loads((built / 'meta.json').read_text())['seed'] == 2
    assert (built / 'pretrained' / 'backbone.pth').read_bytes() == b'weights'
    assert (built / 'annotations' / 'my_counts.json').read_text() == '{}'
    assert sorted(os.listdir(built.parent)) == ['out']
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(built).st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's 0o700


@pytest.mark.parametrize('field, value, match', [
    ('max_class_images', -5, 'max_class_images must be an integer >= 1, got -5'),
    ('train_images', 0, 'train_images must be an integer >= 1, got 0'),
    ('val_class_images', 2.5, 'val_class_images must be an integer >= 1, got 2.5'),
    ('seed', -1, 'seed must be an integer >= 0'),
    ('imbalance_factor', float('nan'), 'imbalance_factor must be a finite number >= 1'),
    ('extra_instance_prob', 1.5, r'extra_instance_prob must be in \[0, 1\]'),
])
def test_config_values_are_checked_by_name(field, value, match):
    """max_class_images = -5 used to become 1 for every class (max(1, round(-5 ...))) and fail
    later advising to lower max_class_images."""
    with pytest.raises(ValueError, match=match):
        DigitsLTConfig(**{field: value})


def _cli():
    spec = importlib.util.spec_from_file_location('make_digits_lt',
                                                  os.path.join(REPO, 'tools', 'make_digits_lt.py'))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    return cli


@pytest.mark.parametrize('args, message', [
    (['--max-class-images', '-3'], 'argument --max-class-images: must be an integer >= 1, '
     'got -3'),
    (['--imbalance-factor', 'nan'], 'argument --imbalance-factor: must be a finite number >= 1'),
    (['--train-images', 'ten'], "argument --train-images: must be an integer, got 'ten'"),
    # the default preset's digits are up to 48 px: they cannot fit a 32 px image
    (['--image-size', '32'], r'digit_size \(16, 48\) must satisfy 8 <= min <= max <= '
     r'image_size \(32\)'),
])
def test_cli_refuses_bad_arguments_in_one_line_before_writing(tmp_path, capsys, args, message):
    out = tmp_path / 'out'
    with pytest.raises(SystemExit) as exit_info:
        _cli().main(['--out', str(out)] + args)
    assert exit_info.value.code == 2  # argparse's status for a bad argument
    lines = capsys.readouterr().err.strip().splitlines()  # argparse's usage, then the error
    error = lines[-1]
    assert lines[0].startswith('usage: ') and ': error: ' in error
    assert re.search(message, error), error
    assert not out.exists()


def test_cli_reports_unplaceable_counts_and_a_file_as_out(tmp_path, capsys):
    out = tmp_path / 'out'
    code = _cli().main(['--out', str(out), '--train-images', '10', '--max-class-images', '40',
                        '--val-images', '10', '--val-class-images', '3', '--image-size', '64'])
    assert code == 2 and 'cannot place' in capsys.readouterr().err and not out.exists()
    (tmp_path / 'file').write_text('x')
    with pytest.raises(SystemExit, match='2'):
        _cli().main(['--out', str(tmp_path / 'file')])
    assert 'is a file; give a folder' in capsys.readouterr().err


# --- lt100: two-digit classes, three splits ----------------------------------------------------

# The lt100 preset's shape at a size that builds in seconds: 100 classes from 30 images down to
# 1, balanced val and test.
SMALL_LT100 = dict(image_size=96, train_images=120, val_images=40, test_images=40,
                   max_class_images=30, imbalance_factor=30.0, val_class_images=2,
                   test_class_images=2, min_digits=2, max_digits=8, digit_size=(12, 20),
                   digits_per_object=2, class_order='shuffled')


@pytest.fixture(scope='module')
def small_lt100(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('lt100') / 'a')
    return out, generate_digits_lt(out, DigitsLTConfig(seed=0, **SMALL_LT100))


def test_lt100_classes_are_two_digit_numbers(small_lt100):
    out, meta = small_lt100
    assert meta['classes'] == [f'{k:02d}' for k in range(100)]
    for split in ('train', 'val', 'test'):
        lvis = load(out, f'lvis_v1_{split}.json')
        assert [c['name'] for c in lvis['categories']] == meta['classes']
        assert lvis['categories'][37]['synonyms'] == ['37', 'three seven']
        assert all(c['supercategory'] == 'number'
                   for c in load(out, f'instances_{split}.json')['categories'])


def test_lt100_same_seed_same_files(small_lt100, tmp_path):
    out, _ = small_lt100
    again = str(tmp_path / 'again')
    generate_digits_lt(again, DigitsLTConfig(seed=0, **SMALL_LT100))
    for rel in ('annotations/lvis_v1_train.json', 'annotations/instances_test.json',
                'train/000001.png', 'test/000003.png', 'val/000002.png'):
        assert filecmp.cmp(os.path.join(out, rel), os.path.join(again, rel), shallow=False)


def test_lt100_source_digits_disjoint_across_three_splits(small_lt100):
    _, meta = small_lt100
    sources = {s: set(meta[s]['source_indices']) for s in ('train', 'val', 'test')}
    assert all(sources.values())
    assert not sources['train'] & sources['val'] and not sources['train'] & sources['test']
    assert not sources['val'] & sources['test']
    # every digit of every split is drawn from that split's own samples: train 60% of each
    # digit's ~180 samples, val and test 20% each
    assert 1000 < len(sources['train']) and 300 < len(sources['val']) < 400


def test_lt100_long_tail_balanced_splits_and_lvis_bins(small_lt100):
    out, meta = small_lt100
    train = load(out, 'lvis_v1_train.json')
    counts = sorted((c['image_count'] for c in train['categories']), reverse=True)
    assert counts == long_tail_counts(30, 30.0, 100)  # shuffled over classes, same profile
    for cat in train['categories']:
        n = cat['image_count']
        assert cat['frequency'] == ('r' if n <= 10 else 'c' if n <= 100 else 'f')
    for split in ('val', 'test'):
        imgs, _ = per_class_stats(load(out, f'instances_{split}.json'))
        assert sorted(imgs) == list(range(1, 101)) and set(imgs.values()) == {2}
    # the shuffled order puts neither all '9x' nor all 'x9' numbers at the tail
    rank = meta['frequency_rank']
    assert {name[0] for name in rank[-20:]} != {'9'} and len({n[1] for n in rank[-20:]}) > 3


def test_lt100_preset_has_the_benchmark_shape():
    """The shipped preset: >= 25 rare, 30 common, 20 frequent classes by LVIS's rule."""
    from imbfocal.evaluation.frequency import frequency_group
    cfg = DigitsLTConfig.from_preset('lt100')
    counts = train_class_image_counts(cfg)
    groups = [frequency_group(n) for n in counts]
    assert (groups.count('r'), groups.count('c'), groups.count('f')) == (33, 45, 22)
    assert cfg.splits == ('train', 'val', 'test') and cfg.num_classes == 100


def test_lt100_objects_are_boxed_around_both_digits(small_lt100):
    out, _ = small_lt100
    ann = load(out, 'instances_train.json')
    widths = [a['bbox'][2] for a in ann['annotations']]
    heights = [a['bbox'][3] for a in ann['annotations']]
    # two digits side by side: wider on average than one digit (about 0.6 of its height)
    assert sum(widths) / len(widths) > 0.9 * sum(heights) / len(heights)


def test_backbone_pretraining_writes_weights_the_configs_load(small_lt100, tmp_path):
    import shutil

    import torch
    from mmdet.models.backbones import ResNet

    from imbfocal.datasets.digits_pretraining import (
        CHECKPOINT,
        PretrainConfig,
        is_pretrained,
        pretrain_backbone,
    )
    out, _ = small_lt100
    root = str(tmp_path / 'copy')
    shutil.copytree(out, root)
    cfg = PretrainConfig(patches=256, epochs=1, batch_size=64)
    assert not is_pretrained(root, cfg)
    meta = pretrain_backbone(root, cfg)
    assert is_pretrained(root, cfg) and not is_pretrained(root, PretrainConfig())
    assert 0 <= meta['val_digit_accuracy'] <= 1
    state = torch.load(os.path.join(root, 'pretrained', CHECKPOINT), weights_only=True)
    ResNet(depth=18, base_channels=32).load_state_dict(state['state_dict'])
    with pytest.raises(FileNotFoundError, match='make_digits_lt'):
        pretrain_backbone(str(tmp_path / 'nothing'), cfg)
