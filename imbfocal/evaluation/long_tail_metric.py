"""Long-tail detection metrics: COCO AP plus AP on rare / common / frequent classes.

``LongTailMetric`` (registered in ``mmdet.registry.METRICS``) evaluates boxes with
faster-coco-eval (C++, numpy 2 compatible) in one of two modes:

* **LVIS mode** (an LVIS-format ``ann_file``: categories with ``frequency``, images with
  ``neg_category_ids``): LVIS evaluation as in the official lvis-api -- the 300
  highest-scoring detections per image are kept, detections of a category that is neither
  annotated nor listed as negative in an image are dropped, unmatched detections of a
  category in ``not_exhaustive_category_ids`` are ignored, and the groups come from the
  file's ``frequency`` fields. Cross-checked against ``lvis.LVISEval`` in the tests.
* **COCO mode** (COCO-format ``ann_file``, or ground truth taken from the data samples when
  ``ann_file`` is None): COCO evaluation (100 detections per image), and the classes are
  binned by TRAINING image counts -- rare ``<= 10`` images, common ``11-100``, frequent
  ``> 100`` by default (``frequency_thresholds``) -- given by ``class_frequency=`` (a mapping
  ``name -> image count or 'r'/'c'/'f'``, or a list in label order), ``train_ann_file=``
  (a COCO / LVIS json or a ``tools/class_counts.py`` file), or ``train_dataset=`` (a dataset
  config, counted without loading images).

Per-class AP (both modes) is COCO AP@[.50:.95]: the mean of ``precision[t, r, k, area=all,
maxDets=last]`` over the 10 IoU thresholds ``t`` and 101 recall points ``r``. A class without
ground truth in the evaluated images has precision -1 everywhere and no AP (NaN); it is left
out of its group. ``APr`` / ``APc`` / ``APf`` are the means of the per-class APs of each group
(for a class with ground truth every precision entry is valid, so this equals LVIS's mean over
the pooled precision entries); an empty group reports -1, as LVIS does.

Keys (under the prefix ``lvis`` in LVIS mode, ``coco`` in COCO mode, or ``prefix=``):
``bbox_mAP, bbox_mAP_50, bbox_mAP_75, bbox_mAP_s, bbox_mAP_m, bbox_mAP_l, bbox_APr, bbox_APc,
bbox_APf, bbox_AR@<max_dets>``, and with ``classwise=True`` (default) each class's AP as
``bbox_<class>_precision`` (MMDetection's name), a class without ground truth left out; values
are not rounded. A per-class table (group, training images, AP, AP50) goes to the MMEngine
logger when ``classwise=True``.

``LongTailVOCMetric`` extends MMDetection's ``VOCMetric`` (VOC07 11-point AP at IoU 0.5 by
default) with ``APr`` / ``APc`` / ``APf``: means of the per-class VOC APs over the classes of
each group that have ground truth, frequencies given as for COCO mode (for VOC,
``train_dataset=`` with the training ``VOCDataset`` config is the usual choice).
"""
import itertools
import os.path as osp
import tempfile
from collections import OrderedDict, defaultdict
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from mmdet.evaluation.functional import eval_map
from mmdet.evaluation.metrics import CocoMetric, VOCMetric
from mmdet.registry import DATASETS, METRICS
from mmengine.fileio import get_local_path, load
from mmengine.logging import MMLogger
from terminaltables import AsciiTable

from ..registry import register
from .frequency import (
    FREQUENCY_GROUPS,
    LVIS_THRESHOLDS,
    FrequencySource,
    check_thresholds,
    group_members,
    resolve_frequencies,
    to_group,
)

GROUP_KEYS = {'r': 'APr', 'c': 'APc', 'f': 'APf'}
COCO_STATS = (('mAP', 'AP_all'), ('mAP_50', 'AP_50'), ('mAP_75', 'AP_75'),
              ('mAP_s', 'AP_small'), ('mAP_m', 'AP_medium'), ('mAP_l', 'AP_large'))


def _faster_coco_eval():
    try:
        import faster_coco_eval
    except ImportError as err:  # pragma: no cover - declared dependency
        raise ImportError('LongTailMetric needs faster-coco-eval: '
                          'pip install "faster-coco-eval>=1.6"') from err
    return faster_coco_eval


def is_lvis_format(dataset: Dict[str, Any]) -> bool:
    """True if an annotation dict is LVIS-style (category frequencies, negative lists)."""
    cats, imgs = dataset.get('categories') or [], dataset.get('images') or []
    return bool(cats) and all('frequency' in c for c in cats) and \
        all('neg_category_ids' in i for i in imgs)


def group_average(per_class_ap: Sequence[float], members: Dict[str, List[int]]) -> Dict[str, float]:
    """Mean AP of each frequency group over its classes that have an AP (not NaN).

    Args:
        per_class_ap: AP per label; NaN where the class has no ground truth.
        members: ``{'r': [labels], 'c': [...], 'f': [...]}``.

    Returns:
        ``{'APr': ..., 'APc': ..., 'APf': ...}``; -1 for a group with no valid class.
    """
    out = {}
    for group in FREQUENCY_GROUPS:
        aps = [per_class_ap[i] for i in members[group] if not np.isnan(per_class_ap[i])]
        out[GROUP_KEYS[group]] = float(np.mean(aps)) if aps else -1.0
    return out


def per_class_coco_ap(precision: np.ndarray, iou_index: Optional[int] = None) -> List[float]:
    """Per-category AP from a COCO precision array ``[T, R, K, A, M]`` (area all, last M).

    Args:
        precision: ``COCOeval.eval['precision']``.
        iou_index: One IoU threshold index (0 is IoU 0.5), or None for the mean over all.

    Returns:
        AP per category index; NaN where every entry is -1 (no ground truth).
    """
    p = precision[:, :, :, 0, -1]
    if iou_index is not None:
        p = p[iou_index:iou_index + 1]
    aps = []
    for k in range(p.shape[2]):
        valid = p[:, :, k][p[:, :, k] > -1]
        aps.append(float(valid.mean()) if valid.size else float('nan'))
    return aps


class _FrequencyMixin:
    """Resolves each class's frequency group from one of the supported sources."""

    def _init_frequency(self, class_frequency: Optional[FrequencySource],
                        train_ann_file: Optional[str], train_dataset: Optional[dict],
                        frequency_thresholds: Sequence[int]) -> None:
        """Keep the frequency source, checked now rather than at the first evaluation."""
        self.class_frequency = class_frequency
        self.train_ann_file = train_ann_file
        self.train_dataset = train_dataset
        self.frequency_thresholds = check_thresholds(frequency_thresholds)
        self._train_counts: Optional[Dict[str, int]] = None
        self._unnamed_train_counts: Optional[Sequence[int]] = None
        if class_frequency is not None:
            values = class_frequency.values() if isinstance(class_frequency, Mapping) \
                else class_frequency
            for value in values:
                to_group('class_frequency', value, self.frequency_thresholds)
        if train_ann_file is not None:
            counts, names = self._load_train_image_counts(train_ann_file)
            if names is None:  # a counts list in label order: named by dataset_meta later
                self._unnamed_train_counts = counts
            else:
                self._train_counts = dict(zip(names, counts))
        if train_dataset is not None and not (isinstance(train_dataset, Mapping)
                                              and 'type' in train_dataset):
            raise ValueError(f'train_dataset must be a dataset config (a dict with a type), '
                             f'got {train_dataset!r}')

    def _load_train_image_counts(
            self, train_ann_file: str) -> Tuple[List[int], Optional[List[str]]]:
        """Training images per class from ``train_ann_file`` (raises if unusable); a counts
        file of instances is refused naming the fix that applies to a metric."""
        from ..class_counts import CountTypeMismatch, load_class_counts
        try:
            return load_class_counts(train_ann_file, 'images')
        except CountTypeMismatch as error:
            raise ValueError(
                f'{type(self).__name__}: train_ann_file {error.where} holds {error.held} '
                'counts, but the frequency groups count training images per class: write '
                'an images counts file (tools/class_counts.py <training annotations or config> '
                '--count-type images --out FILE), or give the training annotation json itself'
            ) from None

    @property
    def dataset_meta(self) -> Optional[dict]:
        """The evaluated dataset's meta information (MMEngine's ``BaseMetric``)."""
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: Optional[dict]) -> None:
        """Set it, and check now that the frequency source covers its classes: MMEngine sets it
        when the validation loop is built, before training, not at the first validation.

        Raises:
            ValueError: Naming the classes the frequency source has no entry for.
        """
        self._dataset_meta = dataset_meta
        classes = (dataset_meta or {}).get('classes')
        if classes is not None:
            self.check_classes([str(c) for c in classes])

    def check_classes(self, classes: List[str]) -> None:
        """Raise now if the frequency source does not cover ``classes`` (it is not used in
        LVIS mode, where the evaluated file's ``frequency`` fields give the groups).

        Raises:
            ValueError: Naming the metric and the uncovered classes.
        """
        if not self.has_frequency_source or getattr(self, 'lvis_mode', False):
            return
        try:
            self.class_groups(classes)
        except ValueError as error:
            raise ValueError(f'{type(self).__name__}: {error}') from None

    @property
    def has_frequency_source(self) -> bool:
        return any(getattr(self, name, None) is not None
                   for name in ('class_frequency', 'train_ann_file', 'train_dataset'))

    def missing_frequency_message(self) -> str:
        return (f'{type(self).__name__} needs the training frequency of every class to report '
                'APr/APc/APf on COCO/VOC-format data: pass train_ann_file= (the training '
                "annotation json), class_frequency= ({class: train image count or 'r'/'c'/'f'}) "
                'or train_dataset= (the training dataset config)')

    def train_image_counts(self) -> Optional[Dict[str, int]]:
        """Training images per class name from ``train_ann_file`` / ``train_dataset``."""
        if self._unnamed_train_counts is not None:
            names = list(self.dataset_meta['classes'])
            self._train_counts = dict(zip(names, self._unnamed_train_counts))
        elif self._train_counts is None and self.train_dataset is not None:
            from ..class_counts import counts_from_dataset
            dataset = DATASETS.build(self.train_dataset)
            counts, names = counts_from_dataset(dataset, 'images')
            self._train_counts = dict(zip(names, counts))
        return self._train_counts

    def class_groups(self, classes: Sequence[str]) -> Dict[str, str]:
        """``{class name: 'r' | 'c' | 'f'}`` for every evaluated class."""
        source = self.class_frequency
        if source is None:
            source = self.train_image_counts()
        if source is None:
            raise ValueError(self.missing_frequency_message())
        return resolve_frequencies([str(c) for c in classes], source,
                                   self.frequency_thresholds)

    def log_group_table(self, classes: Sequence[str], groups: Dict[str, str],
                        columns: Dict[str, Sequence[float]], logger: MMLogger,
                        train_counts: Optional[Dict[str, int]] = None) -> None:
        """Log one row per class: group, training images, then the given AP columns."""
        header = ['category', 'group', 'train imgs'] + list(columns)
        rows = [header]
        for i, name in enumerate(classes):
            count = (train_counts or {}).get(str(name), '-')
            rows.append([str(name), groups[str(name)], str(count)] +
                        [f'{col[i]:.4f}' for col in columns.values()])
        logger.info('\n' + AsciiTable(rows).table)


@register(METRICS)
class LongTailMetric(_FrequencyMixin, CocoMetric):
    """COCO / LVIS box AP with APr, APc, APf (see the module docstring for the definitions).

    Args:
        ann_file: COCO- or LVIS-format annotation file of the evaluated split. If None, the
            ground truth is taken from the data samples (COCO mode).
        metric: ``'bbox'`` (default) or ``'segm'`` (LVIS segm needs masks in the file), or a
            list of them.
        mode: ``'auto'`` (LVIS mode for an LVIS-format ``ann_file``), ``'lvis'`` or ``'coco'``.
        class_frequency: COCO mode: ``{class name: training image count or 'r'/'c'/'f'}``
            or such values in label order.
        train_ann_file: COCO mode: training annotation file (COCO / LVIS json or counts file
            from ``tools/class_counts.py``) to count training images per class.
        train_dataset: COCO mode: config of the training dataset, counted without images.
        frequency_thresholds: ``(rare_max, common_max)`` training image counts.
        max_dets: Detections per image evaluated: default 300 in LVIS mode, 100 in COCO.
        classwise: Log the per-class AP table and return each class's AP.
        format_only: Only write the result json (needs ``outfile_prefix``).
        outfile_prefix: Prefix of the written json files; a temporary folder if None.
        backend_args: MMEngine file backend arguments.
        collect_device: ``'cpu'`` or ``'gpu'`` for gathering results across ranks.
        prefix: Metric key prefix; default ``'lvis'`` in LVIS mode, ``'coco'`` otherwise.

    Raises:
        ValueError: In COCO mode without any frequency source, or for an unknown ``mode``; and
            when ``dataset_meta`` is set (MMEngine does it as the validation loop is built,
            before training), if its classes are not ``ann_file``'s categories or the
            frequency source has no entry for some of them.
    """
    default_prefix: Optional[str] = 'coco'

    def __init__(self,
                 ann_file: Optional[str] = None,
                 metric: Union[str, List[str]] = 'bbox',
                 mode: str = 'auto',
                 class_frequency: Optional[FrequencySource] = None,
                 train_ann_file: Optional[str] = None,
                 train_dataset: Optional[dict] = None,
                 frequency_thresholds: Sequence[int] = LVIS_THRESHOLDS,
                 max_dets: Optional[int] = None,
                 classwise: bool = True,
                 format_only: bool = False,
                 outfile_prefix: Optional[str] = None,
                 backend_args: Optional[dict] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        metrics = metric if isinstance(metric, list) else [metric]
        if not set(metrics) <= {'bbox', 'segm'}:
            raise KeyError(f"LongTailMetric evaluates 'bbox' and 'segm', got {metric}")
        if mode not in ('auto', 'lvis', 'coco'):
            raise ValueError(f"mode must be 'auto', 'lvis' or 'coco', got {mode!r}")
        gt_api = self._load_gt(ann_file, backend_args) if ann_file else None
        self.lvis_mode = gt_api is not None and (
            mode == 'lvis' or (mode == 'auto' and is_lvis_format(gt_api.dataset)))
        if mode == 'lvis' and not (gt_api and is_lvis_format(gt_api.dataset)):
            raise ValueError("mode='lvis' needs an LVIS-format ann_file (categories with "
                             "'frequency', images with 'neg_category_ids')")
        super().__init__(ann_file=None, metric=metrics, classwise=classwise,
                         format_only=format_only, outfile_prefix=outfile_prefix,
                         backend_args=backend_args, collect_device=collect_device,
                         prefix=prefix or ('lvis' if self.lvis_mode else 'coco'))
        self._coco_api = gt_api
        if max_dets is not None and (not isinstance(max_dets, int) or max_dets < 1):
            raise ValueError(f'max_dets must be a positive number of detections per image (or '
                             f'None: 300 in LVIS mode, 100 in COCO mode), got {max_dets!r}')
        self.max_dets = max_dets or (300 if self.lvis_mode else 100)
        if gt_api is not None:
            _file_frequencies(gt_api.dataset)  # an unknown frequency fails here, not later
        self._init_frequency(class_frequency, train_ann_file, train_dataset,
                             frequency_thresholds)
        if not self.lvis_mode and not self.has_frequency_source and not (
                gt_api is not None and _file_frequencies(gt_api.dataset)):
            raise ValueError(self.missing_frequency_message())

    def check_classes(self, classes: List[str]) -> None:
        """Raise now if ``ann_file``'s categories or the frequency source do not match
        ``classes`` (MMEngine sets ``dataset_meta`` when the validation loop is built).

        Raises:
            ValueError: Naming what does not match.
        """
        super().check_classes(classes)
        if self._coco_api is not None:
            self._category_ids(self._coco_api)

    @staticmethod
    def _load_gt(ann_file: str, backend_args: Optional[dict]):
        coco_cls = _faster_coco_eval().COCO
        with get_local_path(ann_file, backend_args=backend_args) as local_path:
            return coco_cls(local_path)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Evaluate the collected results (see the class docstring for the keys)."""
        logger: MMLogger = MMLogger.get_current_instance()
        gts, preds = zip(*results)
        preds = [_known_labels(pred, len(self.dataset_meta['classes']), logger) for pred in preds]
        tmp_dir = None
        if self.outfile_prefix is None:
            tmp_dir = tempfile.TemporaryDirectory()
            outfile_prefix = osp.join(tmp_dir.name, 'results')
        else:
            outfile_prefix = self.outfile_prefix
        try:
            gt_api = self._coco_api or self._load_gt(
                self.gt_to_coco_json(gt_dicts=gts, outfile_prefix=outfile_prefix), None)
            self.cat_ids = self._category_ids(gt_api)
            self.img_ids = gt_api.get_img_ids()
            result_files = self.results2json(preds, outfile_prefix)
            if self.format_only:
                logger.info(f'results are saved in {osp.dirname(outfile_prefix)}')
                return OrderedDict()
            eval_results: Dict[str, float] = OrderedDict()
            for metric in self.metrics:
                eval_results.update(self._evaluate(gt_api, load(result_files[metric]), metric,
                                                   logger))
            return eval_results
        finally:
            if tmp_dir is not None:
                tmp_dir.cleanup()

    def _category_ids(self, gt_api) -> List[int]:
        if self.lvis_mode:  # every category, in file order, like FastLVISV1Dataset
            cat_ids = [c['id'] for c in gt_api.dataset['categories']]
        else:  # CocoMetric's rule: the categories named in dataset_meta, in file order
            cat_ids = gt_api.get_cat_ids(cat_names=list(self.dataset_meta['classes']))
        if len(cat_ids) != len(self.dataset_meta['classes']):
            raise ValueError(f"the annotation file has {len(cat_ids)} categories matching the "
                             f"{len(self.dataset_meta['classes'])} dataset classes; the "
                             "dataset's metainfo['classes'] must name the file's categories")
        return cat_ids

    def _evaluate(self, gt_api, predictions: List[dict], metric: str,
                  logger: MMLogger) -> Dict[str, float]:
        """Run faster-coco-eval for one iou type and turn its arrays into metric keys."""
        logger.info(f'Evaluating {metric} ({"LVIS" if self.lvis_mode else "COCO"} mode, '
                    f'{self.max_dets} detections per image)...')
        if self.lvis_mode:
            predictions = limit_per_image(predictions, self.max_dets)
        if metric == 'segm':
            for p in predictions:  # use mask areas, as CocoMetric does
                p.pop('bbox', None)
        fce = _faster_coco_eval()
        dt_api = gt_api.loadRes(predictions)
        coco_eval = fce.COCOeval_faster(gt_api, dt_api, metric, lvis_style=self.lvis_mode,
                                        print_function=logger.info)
        coco_eval.params.catIds = self.cat_ids
        coco_eval.params.imgIds = self.img_ids
        coco_eval.params.maxDets = [self.max_dets] if self.lvis_mode else \
            sorted({1, 10, self.max_dets})
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
        return self._collect(coco_eval, gt_api, metric, logger)

    def _collect(self, coco_eval, gt_api, metric: str,
                 logger: MMLogger) -> Dict[str, float]:
        stats = coco_eval.stats_as_dict
        out = OrderedDict((f'{metric}_{key}', float(stats[name])) for key, name in COCO_STATS)
        classes = [str(c) for c in self.dataset_meta['classes']]
        groups = self._groups(gt_api, classes)
        ap = per_class_coco_ap(coco_eval.eval['precision'])
        for key, value in group_average(ap, group_members(groups, classes)).items():
            out[f'{metric}_{key}'] = value
        recall = coco_eval.eval['recall'][:, :, 0, -1]  # [T, K, A, M]: area all, last M
        out[f'{metric}_AR@{self.max_dets}'] = float(recall[recall > -1].mean()) \
            if (recall > -1).any() else -1.0
        if self.classwise:
            ap50 = per_class_coco_ap(coco_eval.eval['precision'], iou_index=0)
            self.log_group_table(classes, groups, {'AP': ap, 'AP50': ap50}, logger,
                                 self._table_counts(gt_api, classes))
            # MMDetection's CocoMetric names per-class AP this way under classwise=True
            out.update((f'{metric}_{name}_precision', value)
                       for name, value in zip(classes, ap) if not np.isnan(value))
        logger.info(f'{metric}_mAP_copypaste: ' +
                    ' '.join(f'{out[f"{metric}_{k}"]:.3f}' for k in
                             ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l', 'APr',
                              'APc', 'APf')))
        return out

    def _groups(self, gt_api, classes: List[str]) -> Dict[str, str]:
        file_groups = _file_frequencies(gt_api.dataset, self.cat_ids)
        if self.lvis_mode or (file_groups and not self.has_frequency_source):
            return dict(zip(classes, file_groups))
        return self.class_groups(classes)

    def _table_counts(self, gt_api, classes: List[str]) -> Optional[Dict[str, int]]:
        cats = {c['id']: c for c in gt_api.dataset['categories']}
        if all('image_count' in cats[i] for i in self.cat_ids):
            return {n: cats[i]['image_count'] for n, i in zip(classes, self.cat_ids)}
        if self.train_ann_file is not None or self.train_dataset is not None:
            return self.train_image_counts()
        return None


def _file_frequencies(dataset: Dict[str, Any],
                      cat_ids: Optional[Sequence[int]] = None) -> Optional[List[str]]:
    """The ``frequency`` of the given (default: all) categories, or None if any lacks it.

    Raises:
        ValueError: For a frequency other than 'r', 'c' or 'f'.
    """
    cats = {c['id']: c for c in dataset.get('categories') or []}
    ids = list(cats) if cat_ids is None else list(cat_ids)
    if not ids or any('frequency' not in cats[i] for i in ids):
        return None
    bad = [(cats[i].get('name', i), cats[i]['frequency']) for i in ids
           if cats[i]['frequency'] not in FREQUENCY_GROUPS]
    if bad:
        raise ValueError(f"category frequency must be one of {FREQUENCY_GROUPS} (LVIS's "
                         f'rare / common / frequent), got {bad[:5]} (category, frequency)')
    return [cats[i]['frequency'] for i in ids]


def _known_labels(pred: Dict[str, Any], num_classes: int, logger: MMLogger) -> Dict[str, Any]:
    """The prediction without detections whose label is not a class (e.g. -1), warned about;
    indexing the category ids with -1 would score them as the last category."""
    labels = np.asarray(pred['labels'])
    known = (labels >= 0) & (labels < num_classes)
    if known.all():
        return pred
    logger.warning(f'LongTailMetric: {int((~known).sum())} detections of image '
                   f"{pred.get('img_id')} have labels outside [0, {num_classes}) "
                   f'({sorted(set(labels[~known].tolist()))[:5]}); they are left out')
    def keep(value):
        if isinstance(value, list):  # masks as RLE dicts
            return [v for v, k in zip(value, known) if k]
        return np.asarray(value)[known]

    per_detection = ('bboxes', 'scores', 'labels', 'masks', 'mask_scores')
    return {key: keep(value) if key in per_detection else value
            for key, value in pred.items()}


def limit_per_image(predictions: List[dict], max_dets: int) -> List[dict]:
    """Keep the ``max_dets`` highest-scoring detections of every image (lvis-api's rule)."""
    by_image: Dict[Any, List[dict]] = defaultdict(list)
    for p in predictions:
        by_image[p['image_id']].append(p)
    kept = [sorted(anns, key=lambda a: a['score'], reverse=True)[:max_dets]
            for anns in by_image.values()]
    return list(itertools.chain.from_iterable(kept))


@register(METRICS)
class LongTailVOCMetric(_FrequencyMixin, VOCMetric):
    """MMDetection's ``VOCMetric`` plus frequency-binned AP (``APr``, ``APc``, ``APf``).

    Args:
        class_frequency: ``{class name: training image count or 'r'/'c'/'f'}`` or values in
            label order.
        train_ann_file: A COCO / LVIS json or ``tools/class_counts.py`` file of the training
            set.
        train_dataset: Config of the training dataset (e.g. the VOC07+12 trainval
            ``ConcatDataset``), counted without loading images.
        frequency_thresholds: ``(rare_max, common_max)`` training image counts.
        nproc: Processes used by ``eval_map``.
        **kwargs: ``VOCMetric`` arguments (``iou_thrs``, ``eval_mode``, ``scale_ranges``...).

    The groups of one IoU threshold are the means of the per-class APs (as computed by
    ``eval_map``) of the group's classes that have ground truth; ``APr`` etc. average them over
    ``iou_thrs`` as ``mAP`` does. Only ``metric='mAP'`` is binned.
    """

    def __init__(self,
                 class_frequency: Optional[FrequencySource] = None,
                 train_ann_file: Optional[str] = None,
                 train_dataset: Optional[dict] = None,
                 frequency_thresholds: Sequence[int] = LVIS_THRESHOLDS,
                 nproc: int = 4,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.scale_ranges is not None:
            raise ValueError('LongTailVOCMetric bins whole-image AP; remove scale_ranges or '
                             'use VOCMetric for AP per scale')
        self._init_frequency(class_frequency, train_ann_file, train_dataset,
                             frequency_thresholds)
        if not self.has_frequency_source:
            raise ValueError(self.missing_frequency_message())
        self.nproc = nproc

    def compute_metrics(self, results: list) -> dict:
        """``VOCMetric``'s keys (``mAP``, ``AP50``...) plus ``APr``, ``APc``, ``APf``."""
        if self.metric != 'mAP':
            return super().compute_metrics(results)
        logger: MMLogger = MMLogger.get_current_instance()
        gts, preds = zip(*results)
        classes = [str(c) for c in self.dataset_meta['classes']]
        groups = self.class_groups(classes)
        members = group_members(groups, classes)
        dataset = 'voc' if self.dataset_meta.get('dataset_type') in ('VOC2007', 'VOC2012') \
            else classes
        eval_results: Dict[str, float] = OrderedDict()
        per_thr: List[Tuple[float, Dict[str, float]]] = []
        for iou_thr in self.iou_thrs:
            mean_ap, cls_results = eval_map(
                preds, gts, scale_ranges=self.scale_ranges, iou_thr=iou_thr, dataset=dataset,
                logger=logger, eval_mode=self.eval_mode, use_legacy_coordinate=True,
                nproc=self.nproc)
            ap = [float(r['ap']) if r['num_gts'] > 0 else float('nan') for r in cls_results]
            per_thr.append((mean_ap, group_average(ap, members)))
            eval_results[f'AP{int(iou_thr * 100):02d}'] = round(mean_ap, 3)
            self.log_group_table(classes, groups, {f'AP{int(iou_thr * 100)}': ap}, logger,
                                 self._train_counts)
        eval_results['mAP'] = float(np.mean([m for m, _ in per_thr]))
        eval_results.move_to_end('mAP', last=False)
        for key in GROUP_KEYS.values():
            eval_results[key] = float(np.mean([g[key] for _, g in per_thr]))
        return eval_results
