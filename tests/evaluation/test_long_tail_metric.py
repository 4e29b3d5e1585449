"""LongTailMetric / LongTailVOCMetric: LVIS agreement with lvis-api, hand-computed bins."""
import json

import numpy as np
import pytest
import torch
from mmdet.registry import METRICS
from mmdet.structures import DetDataSample
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData

import imbfocal  # noqa: F401  (registers the metrics)
from imbfocal.class_counts import save_class_counts
from imbfocal.evaluation.frequency import frequency_group, resolve_frequencies
from imbfocal.evaluation.long_tail_metric import LongTailMetric, limit_per_image

LVIS_KEYS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l', 'APr', 'APc', 'APf')
LVIS_API_KEYS = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'APr', 'APc', 'APf')


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------

def det_sample(img_id, bboxes, scores, labels, size=(200, 200), instances=None):
    """An mmdet-style data sample with predictions (and optionally ground-truth instances)."""
    sample = DetDataSample(metainfo=dict(img_id=img_id, ori_shape=size, img_shape=size))
    pred = InstanceData()
    pred.bboxes = torch.tensor(np.asarray(bboxes, dtype=np.float32).reshape(-1, 4))
    pred.scores = torch.tensor(np.asarray(scores, dtype=np.float32))
    pred.labels = torch.tensor(np.asarray(labels, dtype=np.int64))
    sample.pred_instances = pred
    if instances is not None:
        sample.set_metainfo(dict(instances=instances))
    return sample


def run_evaluator(metric, classes, samples):
    evaluator = Evaluator([metric])
    evaluator.dataset_meta = dict(classes=tuple(classes))
    evaluator.process(data_samples=samples, data_batch=None)
    return evaluator.evaluate(len(samples))


def make_lvis_fixture(rng, num_images=24, size=200):
    """Random LVIS-format ground truth with every frequency group, neg and not-exhaustive
    lists, plus noisy detections: matches, misses, false positives, unverified categories."""
    freqs = ['r', 'r', 'r', 'c', 'c', 'c', 'c', 'f', 'f', 'f', 'f', 'f']
    cats = [dict(id=i + 1, name=f'cls{i}', frequency=f, image_count=3, instance_count=3,
                 synset=f'cls{i}.n.01') for i, f in enumerate(freqs)]
    images, anns, dets = [], [], []
    for img_id in range(1, num_images + 1):
        present = rng.choice(len(cats), size=int(rng.integers(1, 4)), replace=False) + 1
        absent = [c for c in range(1, len(cats) + 1) if c not in present]
        neg = sorted(int(c) for c in rng.choice(absent, size=len(absent) // 2, replace=False))
        not_exh = [int(present[0])] if rng.random() < 0.3 else []
        images.append(dict(id=img_id, width=size, height=size, coco_url=f'x/{img_id}.jpg',
                           neg_category_ids=neg, not_exhaustive_category_ids=not_exh))
        for cat in present:
            for _ in range(int(rng.integers(1, 3))):
                w, h = (float(v) for v in rng.uniform(8, 140, 2))
                x, y = float(rng.uniform(0, size - w)), float(rng.uniform(0, size - h))
                anns.append(dict(id=len(anns) + 1, image_id=img_id, category_id=int(cat),
                                 bbox=[x, y, w, h], area=w * h))
                if rng.random() < 0.8:  # a noisy detection of it
                    jit = rng.normal(0, 0.12, 4) * [w, h, w, h]
                    dets.append(dict(image_id=img_id, category_id=int(cat),
                                     bbox=[x + jit[0], y + jit[1], max(1, w + jit[2]),
                                           max(1, h + jit[3])],
                                     score=float(rng.uniform(0.05, 1))))
        for _ in range(int(rng.integers(2, 8))):  # false positives, any category
            w, h = (float(v) for v in rng.uniform(8, 120, 2))
            dets.append(dict(image_id=img_id, category_id=int(rng.integers(1, len(cats) + 1)),
                             bbox=[float(rng.uniform(0, size - w)),
                                   float(rng.uniform(0, size - h)), w, h],
                             score=float(rng.uniform(0, 0.9))))
    # One image over the LVIS cap of 300 detections: 310 confident false positives of a
    # verified-absent class push that image's true detections out of its top 300.
    for k in range(310):
        dets.append(dict(image_id=1, category_id=images[0]['neg_category_ids'][0],
                         bbox=[float(k % 150), 3.0, 20.0, 20.0], score=0.6 + k * 1e-3))
    return dict(images=images, annotations=anns, categories=cats), dets


def samples_from_dets(dets, cat_ids):
    label_of = {c: i for i, c in enumerate(cat_ids)}
    by_img = {}
    for d in dets:
        by_img.setdefault(d['image_id'], []).append(d)
    samples = []
    for img_id, ds in sorted(by_img.items()):
        boxes = [[d['bbox'][0], d['bbox'][1], d['bbox'][0] + d['bbox'][2],
                  d['bbox'][1] + d['bbox'][3]] for d in ds]
        samples.append(det_sample(img_id, boxes, [d['score'] for d in ds],
                                  [label_of[d['category_id']] for d in ds]))
    return samples


# ------------------------------------------------------------------------------------------
# LVIS mode vs the official lvis-api
# ------------------------------------------------------------------------------------------

def test_lvis_mode_matches_official_lvis_api(tmp_path, monkeypatch):
    lvis = pytest.importorskip('lvis', reason='cross-check needs the lvis-api: pip install lvis')
    gt, dets = make_lvis_fixture(np.random.default_rng(0))
    ann_file = tmp_path / 'lvis_val.json'
    ann_file.write_text(json.dumps(gt))
    # Float32 round trip, as the predictions pass through torch tensors in the metric.
    for d in dets:
        x, y, w, h = d['bbox']
        x1, y1, x2, y2 = np.asarray([x, y, x + w, y + h], dtype=np.float32).tolist()
        d['bbox'], d['score'] = [x1, y1, x2 - x1, y2 - y1], float(np.float32(d['score']))

    metric = LongTailMetric(ann_file=str(ann_file))
    assert metric.lvis_mode and metric.prefix == 'lvis' and metric.max_dets == 300
    classes = [c['name'] for c in gt['categories']]
    ours = run_evaluator(metric, classes, samples_from_dets(dets, [c['id'] for c in
                                                                   gt['categories']]))

    monkeypatch.setattr(np, 'float', float, raising=False)  # lvis 0.5.3 on numpy >= 1.24
    lvis_gt = lvis.LVIS(str(ann_file))
    lvis_eval = lvis.LVISEval(lvis_gt, lvis.LVISResults(lvis_gt, [dict(d) for d in dets]),
                              'bbox')
    lvis_eval.run()
    official = lvis_eval.get_results()
    assert official['APr'] > 0 and official['APc'] > 0 and official['APf'] > 0
    for ours_key, api_key in zip(LVIS_KEYS, LVIS_API_KEYS):
        assert ours[f'lvis/bbox_{ours_key}'] == pytest.approx(official[api_key], abs=1e-4), \
            ours_key
    assert ours['lvis/bbox_AR@300'] == pytest.approx(official['AR@300'], abs=1e-4)
    # The 300 cap mattered: without it the crowded image's true detections count.
    uncapped = run_evaluator(LongTailMetric(ann_file=str(ann_file), max_dets=1000), classes,
                             samples_from_dets(dets, [c['id'] for c in gt['categories']]))
    assert uncapped['lvis/bbox_AR@1000'] > ours['lvis/bbox_AR@300']


def test_limit_per_image_keeps_top_scores():
    dets = [dict(image_id=i % 2, score=s) for i, s in enumerate([.1, .9, .5, .3, .7, .2])]
    kept = limit_per_image(dets, 2)
    assert sorted((d['image_id'], d['score']) for d in kept) == [(0, .5), (0, .7), (1, .3),
                                                                (1, .9)]


# ------------------------------------------------------------------------------------------
# COCO mode: bins by hand
# ------------------------------------------------------------------------------------------

CLASSES = ('a', 'b', 'c', 'd')
TRAIN_IMAGES = {'a': 5, 'b': 50, 'c': 500, 'd': 2}  # -> r, c, f, r (LVIS thresholds)
BOX_A, BOX_B1, BOX_B2, BOX_C = [10, 10, 60, 60], [100, 100, 180, 150], [20, 30, 90, 120], \
    [110, 20, 190, 90]


def hand_fixture_samples(with_gt: bool):
    """Two images. GT: a x1, b x2, c x1, d none. Detections: a perfect; b finds one of two;
    c nothing; d one false positive (no GT for d in val)."""
    inst = (lambda *objs: [dict(bbox=b, bbox_label=lab, ignore_flag=0) for b, lab in objs]) \
        if with_gt else (lambda *objs: None)
    return [
        det_sample(1, [BOX_A, BOX_B1], [0.9, 0.8], [0, 1],
                   instances=inst((BOX_A, 0), (BOX_B1, 1))),
        det_sample(2, [[0, 0, 30, 30]], [0.7], [3],
                   instances=inst((BOX_B2, 1), (BOX_C, 2))),
    ]


def test_coco_mode_bins_match_hand_computation():
    # Per-class COCO AP@[.5:.95] (101 recall points, IoU of a perfect box is 1 at every
    # threshold):
    #   a: one GT, one perfect detection           -> precision 1 at all recalls  -> AP 1
    #   b: two GT, one perfect detection, no FP    -> precision 1 for recall 0..0.50 (51
    #      points), 0 for 0.51..1.00 (50 points)  -> AP 51/101
    #   c: one GT, no detection                    -> AP 0
    #   d: no GT in val (precision -1)             -> no AP, left out of the rare group
    # Groups by training images (<=10 r, 11-100 c, >100 f): a, d -> r; b -> c; c -> f.
    #   APr = AP_a = 1, APc = AP_b = 51/101, APf = AP_c = 0, mAP = (1 + 51/101 + 0) / 3.
    metric = METRICS.build(dict(type='LongTailMetric', class_frequency=TRAIN_IMAGES,
                                classwise=True))
    assert not metric.lvis_mode and metric.prefix == 'coco'
    res = run_evaluator(metric, CLASSES, hand_fixture_samples(with_gt=True))
    assert res['coco/bbox_APr'] == pytest.approx(1.0)
    assert res['coco/bbox_APc'] == pytest.approx(51 / 101)
    assert res['coco/bbox_APf'] == pytest.approx(0.0)
    assert res['coco/bbox_mAP'] == pytest.approx((1 + 51 / 101) / 3)
    assert res['coco/bbox_mAP_50'] == pytest.approx((1 + 51 / 101) / 3)


def test_coco_mode_frequencies_from_train_ann_file_and_thresholds(tmp_path):
    # A COCO train json in which a is in 5 images, b in 50, c in 500 and d in 2.
    cats = [dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)]
    anns, img = [], 0
    for cid, n in enumerate(TRAIN_IMAGES.values(), start=1):
        for _ in range(n):
            img += 1
            anns.append(dict(id=len(anns) + 1, image_id=img, category_id=cid,
                             bbox=[0, 0, 5, 5], area=25, iscrowd=0))
    train = tmp_path / 'train.json'
    train.write_text(json.dumps(dict(images=[dict(id=i, width=9, height=9, file_name='')
                                             for i in range(1, img + 1)],
                                     annotations=anns, categories=cats)))
    metric = LongTailMetric(train_ann_file=str(train))
    res = run_evaluator(metric, CLASSES, hand_fixture_samples(with_gt=True))
    assert (res['coco/bbox_APr'], res['coco/bbox_APf']) == pytest.approx((1.0, 0.0))
    # Thresholds (4, 60): a (5 imgs) becomes common with b, d alone is rare but has no GT.
    metric = LongTailMetric(train_ann_file=str(train), frequency_thresholds=(4, 60))
    res = run_evaluator(metric, CLASSES, hand_fixture_samples(with_gt=True))
    assert res['coco/bbox_APr'] == -1.0  # empty group, LVIS convention
    assert res['coco/bbox_APc'] == pytest.approx((1 + 51 / 101) / 2)


def test_coco_mode_without_frequencies_names_the_fix():
    with pytest.raises(ValueError, match='train_ann_file='):
        LongTailMetric()


def test_an_instances_counts_file_names_the_fix_a_metric_has(tmp_path):
    """The counts loader's advice "set count_type='instances'" named an argument the metric
    does not take: the metric counts training images, whatever the file holds."""
    counts = tmp_path / 'counts.json'
    save_class_counts(counts, [5, 50, 500, 2], CLASSES, 'instances')
    with pytest.raises(ValueError) as error:
        LongTailMetric(train_ann_file=str(counts))
    assert 'count_type=' not in str(error.value)
    assert str(error.value).startswith(f'LongTailMetric: train_ann_file {counts} holds '
                                       'instances counts')
    assert '--count-type images' in str(error.value)


@pytest.mark.parametrize('source', [
    dict(train_ann_file='counts'),
    dict(class_frequency={'zebra': 3, 'yak': 40}),
])
def test_another_datasets_classes_fail_before_training(tmp_path, source):
    """The metric is told the evaluated classes when MMEngine builds the validation loop
    (Evaluator.dataset_meta), before the first iteration: a frequency source naming another
    dataset's classes fails there, not at the first validation hours later."""
    if 'train_ann_file' in source:
        save_class_counts(tmp_path / 'counts.json', [3, 40], ['zebra', 'yak'], 'images')
        source = dict(train_ann_file=str(tmp_path / 'counts.json'))
    evaluator = Evaluator([LongTailMetric(**source)])  # builds: the source itself is fine
    with pytest.raises(ValueError, match=r"^LongTailMetric: no training frequency for classes "
                       r"\['a', 'b', 'c', 'd'\] of the evaluated dataset.*names "
                       r"\['zebra', 'yak'\]"):
        evaluator.dataset_meta = dict(classes=CLASSES)
    evaluator = Evaluator([LongTailMetric(class_frequency=TRAIN_IMAGES)])
    evaluator.dataset_meta = dict(classes=CLASSES)  # the right classes pass


def test_an_annotation_file_of_other_categories_fails_before_training(tmp_path):
    ann = tmp_path / 'val.json'
    ann.write_text(json.dumps(dict(images=[dict(id=1, width=9, height=9, file_name='')],
                                   annotations=[], categories=[dict(id=1, name='zebra')])))
    metric = LongTailMetric(ann_file=str(ann), class_frequency=TRAIN_IMAGES)
    with pytest.raises(ValueError, match='the annotation file has 0 categories matching the 4 '
                       'dataset classes'):
        metric.dataset_meta = dict(classes=CLASSES)


def test_resolve_frequencies_rules():
    assert [frequency_group(n) for n in (0, 10, 11, 100, 101)] == ['r', 'r', 'c', 'c', 'f']
    assert resolve_frequencies(['x', 'y'], [3, 'f']) == {'x': 'r', 'y': 'f'}
    with pytest.raises(ValueError, match='no training frequency'):
        resolve_frequencies(['x', 'z'], {'x': 1})


# ------------------------------------------------------------------------------------------
# VOC
# ------------------------------------------------------------------------------------------

def voc_sample(img_id, gt_boxes, gt_labels, pred_boxes, scores, labels):
    sample = det_sample(img_id, pred_boxes, scores, labels)
    gt = InstanceData()
    gt.bboxes = torch.tensor(np.asarray(gt_boxes, dtype=np.float32).reshape(-1, 4))
    gt.labels = torch.tensor(np.asarray(gt_labels, dtype=np.int64))
    sample.gt_instances = gt
    ign = InstanceData()
    ign.bboxes = torch.zeros((0, 4))
    ign.labels = torch.zeros((0, ), dtype=torch.long)
    sample.ignored_instances = ign
    return sample


def test_voc_metric_bins_match_hand_computation():
    # VOC07 11-point AP at IoU 0.5: a perfect -> 1; b one of two found, no FP -> precision 1 at
    # recall 0, .1, ..., .5 (6 of 11 points) -> 6/11; c missed -> 0; d has no GT -> left out.
    metric = METRICS.build(dict(type='LongTailVOCMetric', class_frequency=TRAIN_IMAGES,
                                nproc=1))
    samples = [
        voc_sample(1, [BOX_A, BOX_B1], [0, 1], [BOX_A, BOX_B1], [0.9, 0.8], [0, 1]),
        voc_sample(2, [BOX_B2, BOX_C], [1, 2], [[0, 0, 30, 30]], [0.7], [3]),
    ]
    res = run_evaluator(metric, CLASSES, samples)
    assert res['pascal_voc/APr'] == pytest.approx(1.0)
    assert res['pascal_voc/APc'] == pytest.approx(6 / 11)
    assert res['pascal_voc/APf'] == pytest.approx(0.0)
    assert res['pascal_voc/mAP'] == pytest.approx((1 + 6 / 11) / 3)
