"""Per-class training counts: where they come from and how a loss keeps them.

A loss that weights classes by their frequency (class-balanced focal, Adaptive Focal) takes
``class_counts=`` in one of these forms:

* a list of non-negative ints, one per class, in label order;
* a path to a COCO annotation json (counts computed from ``annotations``; crowd annotations are
  not counted, as MMDetection ignores them in training);
* a path to an LVIS v1 annotation json (categories carry ``instance_count`` and ``image_count``);
* a path to a counts file written by ``tools/class_counts.py`` (format below);
* ``None``: filled before training by ``ClassCountsHook`` from the training dataset.

Class order for annotation files is the order of the ``categories`` list, which is the label
order MMDetection's ``CocoDataset`` and ``LVISV1Dataset`` use when their ``metainfo['classes']``
lists every category. For any other class list, write a counts file from the dataset config.

Counts file format (json, version 1)::

    {"format": "imbfocal-class-counts", "version": 1, "count_type": "instances",
     "classes": ["cat", "dog"], "counts": [120, 3], "source": "data/train.json"}

``count_type`` is ``'instances'`` (boxes per class) or ``'images'`` (images containing the
class). A counts file holds one kind; loading it with the other ``count_type`` is an error.
"""
import json
import math
import os
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

COUNTS_FORMAT = 'imbfocal-class-counts'
COUNTS_VERSION = 1
COUNT_TYPES = ('instances', 'images')

ClassCountsSource = Union[None, str, os.PathLike, Sequence[int], Tensor]
Counts = Tuple[List[int], Optional[List[str]]]


class CountTypeMismatch(ValueError):
    """A counts file holds the other ``count_type`` than the one asked for.

    Attributes:
        where: The file.
        held: The ``count_type`` it holds.
        wanted: The ``count_type`` asked for.
    """

    def __init__(self, where: str, held: str, wanted: str) -> None:
        super().__init__(f'{where}: the file holds {held} counts but count_type={wanted!r} was '
                         f'asked for; set count_type={held!r} or rewrite the file with '
                         f'tools/class_counts.py --count-type {wanted}')
        self.where, self.held, self.wanted = where, held, wanted


def check_count_type(count_type: str) -> None:
    """Raise ``ValueError`` unless ``count_type`` is one of ``COUNT_TYPES``."""
    if count_type not in COUNT_TYPES:
        raise ValueError(f"count_type must be one of {COUNT_TYPES}, got {count_type!r}")


def _as_count(value: Any) -> Optional[int]:
    """``value`` as a non-negative int (ints, numpy integers, int-valued finite floats), or
    None if it is not one."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value) if value >= 0 else None
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and value >= 0 \
            and float(value).is_integer():
        return int(value)
    return None


def _validate_counts(counts: Any, where: str) -> List[int]:
    if isinstance(counts, (Tensor, np.ndarray)):
        if counts.ndim != 1:
            raise ValueError(f'{where}: class counts must be one count per class (1-d), got '
                             f'shape {tuple(counts.shape)}')
        counts = counts.tolist()
    if isinstance(counts, (str, bytes)) or not isinstance(counts, Sequence):
        raise ValueError(f'{where}: class counts must be a list of ints, got '
                         f'{type(counts).__name__}')
    if not counts:
        raise ValueError(f'{where}: class counts are empty')
    valid = [_as_count(c) for c in counts]
    bad = [c for c, v in zip(counts, valid) if v is None]
    if bad:
        raise ValueError(f'{where}: class counts must be whole numbers >= 0 (ints, numpy '
                         f'integers or integral floats); invalid values: {bad[:5]}')
    return valid


def _counts_from_annotations(ann: Dict[str, Any], count_type: str, where: str) -> Counts:
    categories = ann['categories']
    if not isinstance(categories, list) or not categories:
        raise ValueError(f'{where}: "categories" must be a non-empty list')
    try:
        cat_ids = [cat['id'] for cat in categories]
        names = [str(cat['name']) for cat in categories]
    except (KeyError, TypeError) as err:
        raise ValueError(f'{where}: every category needs "id" and "name"') from err
    field = 'instance_count' if count_type == 'instances' else 'image_count'
    if all(isinstance(cat, dict) and field in cat for cat in categories):  # LVIS
        return _validate_counts([cat[field] for cat in categories], where), names
    if 'annotations' not in ann:
        raise ValueError(f'{where}: has "categories" but neither "annotations" nor a '
                         f'"{field}" on every category')
    label_of = {cat_id: label for label, cat_id in enumerate(cat_ids)}
    instances = [0] * len(cat_ids)
    images = [set() for _ in cat_ids]
    try:
        for a in ann['annotations']:
            if a.get('iscrowd', 0):
                continue
            label = label_of.get(a['category_id'])
            if label is None:
                raise ValueError(f'{where}: annotation {a.get("id")} has category_id '
                                 f'{a["category_id"]}, which is not in "categories"')
            instances[label] += 1
            images[label].add(a['image_id'])
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f'{where}: every annotation needs "category_id" and '
                         f'"image_id"') from err
    counts = instances if count_type == 'instances' else [len(s) for s in images]
    return counts, names


def _counts_from_counts_file(data: Dict[str, Any], count_type: str, where: str) -> Counts:
    if data.get('version') != COUNTS_VERSION:
        raise ValueError(f'{where}: counts file version {data.get("version")!r} is not '
                         f'supported (this imbfocal reads version {COUNTS_VERSION})')
    missing = [k for k in ('count_type', 'classes', 'counts') if k not in data]
    if missing:
        raise ValueError(f'{where}: counts file lacks {missing}')
    if data['count_type'] != count_type:
        raise CountTypeMismatch(where, data['count_type'], count_type)
    counts = _validate_counts(data['counts'], where)
    names = data['classes']
    if not isinstance(names, list) or len(names) != len(counts):
        raise ValueError(f'{where}: "classes" must list one name per count '
                         f'({len(counts)} counts)')
    return counts, [str(n) for n in names]


def load_class_counts(source: Union[str, os.PathLike, Sequence[int], Tensor],
                      count_type: str = 'instances') -> Counts:
    """Read per-class counts from a list, an annotation json or a counts file.

    Args:
        source: A list of ints, or a path to a COCO / LVIS annotation json or to a counts file
            written by ``tools/class_counts.py``.
        count_type: ``'instances'`` or ``'images'``. Ignored for a list, which is taken as is.

    Returns:
        ``(counts, class_names)``; ``class_names`` is None for a list.

    Raises:
        FileNotFoundError: If the path does not exist.
        ValueError: If the file is not valid json, is of no known format, or holds invalid
            counts; :class:`CountTypeMismatch` if a counts file holds the other
            ``count_type``.
    """
    check_count_type(count_type)
    if not isinstance(source, (str, os.PathLike)):
        return _validate_counts(source, 'class_counts'), None
    where = os.fspath(source)
    if not os.path.isfile(where):
        raise FileNotFoundError(f'class_counts file {where!r} does not exist')
    try:
        with open(where, encoding='utf-8') as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f'{where}: not a json file ({err}); class_counts must be a COCO / '
                         'LVIS annotation json or a counts file from '
                         'tools/class_counts.py') from err
    if isinstance(data, dict) and data.get('format') == COUNTS_FORMAT:
        return _counts_from_counts_file(data, count_type, where)
    if isinstance(data, dict) and 'categories' in data:
        return _counts_from_annotations(data, count_type, where)
    raise ValueError(f'{where}: neither a counts file (format {COUNTS_FORMAT!r}) nor a '
                     'COCO / LVIS annotation file (no "categories")')


def _leaf_datasets(dataset: Any) -> List[Any]:
    # ConcatDataset holds ``datasets``; Repeat/ClassBalanced/MultiImageMix hold ``dataset``.
    # Resampling wrappers are looked through: E_c depends on absolute counts, and repeat
    # factor sampling is a correction of its own, so each distinct image is counted once.
    if hasattr(dataset, 'datasets'):
        return [leaf for d in dataset.datasets for leaf in _leaf_datasets(d)]
    if hasattr(dataset, 'dataset'):
        return _leaf_datasets(dataset.dataset)
    return [dataset]


def counts_from_dataset(dataset: Any, count_type: str = 'instances') -> Counts:
    """Count the training labels of an MMDetection dataset without loading images.

    Works for any ``BaseDetDataset`` (COCO, LVIS, VOC, ...) and the wrappers ``ConcatDataset``
    (summed), ``RepeatDataset``, ``ClassBalancedDataset`` and ``MultiImageMixDataset``
    (looked through: each distinct image counts once). Instances flagged ``ignore_flag``
    (crowd boxes, VOC ``difficult``) are not counted; a dataset whose data infos carry no
    ``instances`` is counted through ``get_cat_ids(idx)``.

    Args:
        dataset: The (possibly wrapped) dataset.
        count_type: ``'instances'`` (boxes per class) or ``'images'`` (images per class).

    Returns:
        ``(counts, class_names)`` in label order, names from ``dataset.metainfo['classes']``.
    """
    check_count_type(count_type)
    names = [str(n) for n in dataset.metainfo['classes']]
    counts = [0] * len(names)
    for leaf in _leaf_datasets(dataset):
        if hasattr(leaf, 'full_init'):
            leaf.full_init()
        for idx in range(len(leaf)):
            instances = leaf.get_data_info(idx).get('instances')
            if instances is None:
                labels = list(leaf.get_cat_ids(idx))
            else:
                labels = [inst['bbox_label'] for inst in instances
                          if not inst.get('ignore_flag', 0)]
            for label in (labels if count_type == 'instances' else set(labels)):
                if not 0 <= label < len(counts):
                    raise ValueError(f'image {idx} of {type(leaf).__name__} has label {label}, '
                                     f'outside the {len(counts)} classes of its metainfo')
                counts[label] += 1
    return counts, names


def is_counts_file(path: Union[str, os.PathLike]) -> bool:
    """Whether ``path`` is a readable counts file written by :func:`save_class_counts`."""
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get('format') == COUNTS_FORMAT


def save_class_counts(path: Union[str, os.PathLike], counts: Sequence[int],
                      class_names: Sequence[str], count_type: str,
                      source: str = '') -> None:
    """Write a counts file (format in this module's docstring)."""
    check_count_type(count_type)
    counts = _validate_counts(list(counts), 'save_class_counts')
    if len(class_names) != len(counts):
        raise ValueError(f'{len(class_names)} class names for {len(counts)} counts')
    data = dict(format=COUNTS_FORMAT, version=COUNTS_VERSION, count_type=count_type,
                classes=list(class_names), counts=counts, source=source)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(data, f, indent=1)
        f.write('\n')


def _describe_counts(counts: Sequence[int]) -> str:
    return f'{len(counts)} classes, {sum(counts)} in all, min {min(counts)}, max {max(counts)}'


class ClassCountsMixin:
    """Keeps per-class counts of an ``nn.Module`` loss in the buffer ``class_counts``.

    The buffer (int64, so ``.half()`` leaves it alone) is saved with checkpoints and moves
    with ``.to()``. Before counts are known it is empty; loading a state dict that holds
    counts into such a module adopts them, whatever their length. Call ``init_class_counts``
    from ``__init__`` after ``nn.Module.__init__``, and ``checked_class_counts(C)`` in
    ``forward``.
    """

    def init_class_counts(self, class_counts: ClassCountsSource, count_type: str) -> None:
        """Parse ``class_counts`` (see this module's docstring) into the buffer."""
        check_count_type(count_type)
        self.count_type = count_type
        self.class_names: Optional[List[str]] = None
        self.class_counts_source: Optional[str] = None
        self._zero_count_warned = False
        self.register_buffer('class_counts', torch.zeros(0, dtype=torch.long))
        if class_counts is not None:
            counts, names = load_class_counts(class_counts, count_type)
            self.set_class_counts(counts, names, source='config')

    @property
    def has_class_counts(self) -> bool:
        return self.class_counts.numel() > 0

    def set_class_counts(self, counts: Union[Sequence[int], Tensor],
                         class_names: Optional[Sequence[str]] = None,
                         source: str = 'set_class_counts') -> None:
        """Replace the counts (and the class names used in messages)."""
        counts = _validate_counts(counts, type(self).__name__)
        if class_names is not None and len(class_names) != len(counts):
            raise ValueError(f'{len(class_names)} class names for {len(counts)} counts')
        self.class_counts = torch.tensor(counts, dtype=torch.long,
                                         device=self.class_counts.device)
        self.class_names = list(class_names) if class_names is not None else None
        self.class_counts_source = source
        self._warn_zero_counts()

    def _warn_zero_counts(self) -> None:
        if self._zero_count_warned:
            return
        zero = (self.class_counts == 0).nonzero().flatten().tolist()
        if not zero:
            return
        self._zero_count_warned = True
        shown = [f'{c} ({self.class_names[c]})' if self.class_names else str(c)
                 for c in zero[:20]]
        more = f' and {len(zero) - 20} more' if len(zero) > 20 else ''
        verbs = ('class has', 'is') if len(zero) == 1 else ('classes have', 'are')
        warnings.warn(f'{type(self).__name__}: {len(zero)} {verbs[0]} no training '
                      f'{self.count_type} and {verbs[1]} counted as 1: {", ".join(shown)}{more}',
                      stacklevel=3)

    def checked_class_counts(self, num_classes: int) -> Tensor:
        """Return the counts buffer after checking it exists and has ``num_classes`` entries.

        Raises:
            RuntimeError: If no counts were given, naming both ways to give them.
            ValueError: If the number of counts differs from ``num_classes``.
        """
        if not self.has_class_counts:
            raise RuntimeError(
                f'{type(self).__name__} has no class counts. Either pass class_counts= to the '
                'loss (a list of ints, a COCO/LVIS annotation json, or a file from '
                "tools/class_counts.py), or add custom_hooks=[dict(type='ClassCountsHook')] "
                'to the config to count the training dataset before training.')
        if self.class_counts.numel() != num_classes:
            raise ValueError(
                f'{type(self).__name__}: {self.class_counts.numel()} class counts '
                f'(from {self.class_counts_source}) but the predictions have '
                f'{num_classes} classes (pred.size(1)); the counts must match num_classes')
        return self.class_counts

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        """Counts given in the config win over a checkpoint's (a difference is warned about,
        naming both); a module without counts adopts the checkpoint's, validated."""
        key = prefix + 'class_counts'
        incoming = state_dict.get(key)
        if incoming is not None and incoming.numel() == 0:  # saved before counts were known
            state_dict[key] = self.class_counts
            incoming = None
        if incoming is not None:
            incoming = torch.tensor(_validate_counts(incoming, f'{key} in the checkpoint'),
                                    dtype=torch.long)
            if self.class_counts_source == 'config':
                if not torch.equal(incoming, self.class_counts.cpu()):
                    warnings.warn(
                        f'{type(self).__name__}: the checkpoint holds other class counts '
                        f'({_describe_counts(incoming.tolist())}) than the config '
                        f'({_describe_counts(self.class_counts.tolist())}); the configured '
                        'counts are kept', stacklevel=2)
                incoming = self.class_counts
            elif not self.has_class_counts:
                # An empty buffer means "not known yet": take the checkpoint's counts.
                self.class_counts = torch.empty_like(incoming, device=self.class_counts.device)
            state_dict[key] = incoming
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)
        if incoming is not None and self.class_counts_source != 'config' \
                and incoming.shape == self.class_counts.shape:
            self.class_counts_source = 'checkpoint'
            self.class_names = None  # the checkpoint does not name its classes
            self._warn_zero_counts()
