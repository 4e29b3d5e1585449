"""LVIS frequency groups (rare / common / frequent) from training image counts.

LVIS bins a category by the number of TRAINING images that contain it: rare ``r`` 1-10
images, common ``c`` 11-100, frequent ``f`` more than 100 (Gupta et al., CVPR 2019). Here
the bins are ``count <= thresholds[0]`` -> ``r``, ``count <= thresholds[1]`` -> ``c``, else
``f``; a class with no training image is rare. The same rule writes the ``frequency`` field of
the digits-LT LVIS files and bins COCO / VOC classes in the long-tail metrics.
"""
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

LVIS_THRESHOLDS: Tuple[int, int] = (10, 100)
FREQUENCY_GROUPS: Tuple[str, str, str] = ('r', 'c', 'f')

FrequencySource = Union[Mapping[str, Union[int, str]], Sequence[Union[int, str]]]


def check_thresholds(thresholds: Sequence[int]) -> Tuple[int, int]:
    """Validate ``(rare_max, common_max)`` image-count thresholds and return them as a tuple.

    Raises:
        ValueError: If there are not two non-negative ints with ``rare_max < common_max``.
    """
    if len(thresholds) != 2 or not all(isinstance(t, int) and t >= 0 for t in thresholds) \
            or thresholds[0] >= thresholds[1]:
        raise ValueError(f'frequency_thresholds must be two ints (rare_max, common_max) with '
                         f'0 <= rare_max < common_max, e.g. (10, 100); got {thresholds!r}')
    return int(thresholds[0]), int(thresholds[1])


def frequency_group(image_count: int,
                    thresholds: Sequence[int] = LVIS_THRESHOLDS) -> str:
    """Return ``'r'``, ``'c'`` or ``'f'`` for a class seen in ``image_count`` training images.

    Args:
        image_count: Number of training images that contain the class.
        thresholds: ``(rare_max, common_max)``; LVIS uses ``(10, 100)``.
    """
    rare_max, common_max = check_thresholds(thresholds)
    if image_count <= rare_max:
        return 'r'
    return 'c' if image_count <= common_max else 'f'


def resolve_frequencies(classes: Sequence[str],
                        source: FrequencySource,
                        thresholds: Sequence[int] = LVIS_THRESHOLDS,
                        names: Optional[Sequence[str]] = None) -> Dict[str, str]:
    """Map every class name to its frequency group.

    Args:
        classes: Class names in label order (``dataset_meta['classes']``).
        source: Either a mapping ``name -> image count or 'r'/'c'/'f'``, or a sequence of
            counts / groups; a sequence is matched to ``names`` when given, else to
            ``classes`` by position.
        thresholds: ``(rare_max, common_max)`` used to bin counts.
        names: Class names that go with a sequence ``source`` (e.g. from an annotation file).

    Returns:
        ``{class name: 'r' | 'c' | 'f'}`` for every name in ``classes``.

    Raises:
        ValueError: If a class has no entry, or an entry is neither a count nor r/c/f.
    """
    if not isinstance(source, Mapping):
        keys = list(names) if names is not None else list(classes)
        if len(keys) != len(source):
            raise ValueError(f'{len(source)} class frequencies for {len(keys)} classes; give '
                             'one per class or a mapping {class name: image count}')
        source = dict(zip(keys, source))
    missing = [c for c in classes if str(c) not in source and c not in source]
    if missing:
        named = [str(name) for name in source][:10]
        raise ValueError(f'no training frequency for classes {missing[:10]} of the evaluated '
                         f'dataset; the frequency source (class_frequency=, train_ann_file= or '
                         f'train_dataset=) names {named}{"..." if len(source) > 10 else ""}: it '
                         'must cover every evaluated class (is it another dataset\'s?)')
    groups = {}
    for name in classes:
        value = source[name] if name in source else source[str(name)]
        groups[str(name)] = to_group(name, value, thresholds)
    return groups


def to_group(name: str, value: Union[int, str], thresholds: Sequence[int]) -> str:
    """``'r'``, ``'c'`` or ``'f'`` from a training image count or a group letter.

    Raises:
        ValueError: Naming the class, for anything else.
    """
    if isinstance(value, str) and value in FREQUENCY_GROUPS:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f'class {name!r}: frequency must be a training image count (int >= 0) '
                         f"or one of 'r', 'c', 'f'; got {value!r}")
    return frequency_group(value, thresholds)


def group_members(groups: Mapping[str, str], classes: Sequence[str]) -> Dict[str, List[int]]:
    """Return ``{'r': [label, ...], 'c': [...], 'f': [...]}`` for classes in label order."""
    members: Dict[str, List[int]] = {g: [] for g in FREQUENCY_GROUPS}
    for label, name in enumerate(classes):
        members[groups[str(name)]].append(label)
    return members
