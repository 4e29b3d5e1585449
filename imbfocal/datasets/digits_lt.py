"""digits-LT: a small long-tailed detection set built from real handwritten digits.

The 1,797 8x8 handwritten digits that scikit-learn ships (``sklearn.datasets.load_digits``,
offline) are upsampled to 16-48 px (``digit_size``), thresholded into soft ink and pasted onto
cluttered paper: a tinted base, a gradient, low-frequency blotches, pixel noise, faint ruled
lines and dark non-digit clutter (scribbles, arcs, crosses, dots, bars) in the same inks as
the digits. Each image holds ``min_digits``-``max_digits`` digits whose ink boxes do not
overlap (2 px apart); boxes are tight around the ink (pixels with alpha > 0.5).

Splits:
  * The source digits are split per class first (``train_source_fraction`` to train, the rest
    to val), so no handwritten sample appears in both splits.
  * Train is long-tailed over the 10 classes: the class of rank ``r`` appears in
    ``n_r = round(max_class_images * imbalance_factor ** (-r / 9))`` training images (at least
    1). With ``class_order='fixed'`` (default) digit ``d`` has rank ``d``: '0' is the most
    frequent class and '9' the rarest; ``'shuffled'`` permutes the ranks with the seed.
    At the default preset the counts are 500, 300, 180, 108, 65, 39, 23, 14, 8, 5 images, so
    '8' and '9' are LVIS-rare (<= 10 images), '4'-'7' common and '0'-'3' frequent.
  * Val is balanced: every class appears in ``val_class_images`` images.
  * Within an image a class appears once, plus one more instance with probability
    ``extra_instance_prob`` (so instance counts exceed image counts a little).

Presets (``DigitsLTConfig.from_preset``): ``default`` -- 128 px images, 600 train / 200 val,
IF 100, 1-4 digits of 16-48 px (trains on 2 CPU cores in minutes; ~17 MB, ~2 s); ``large``
-- 256 px, 4,000 train / 1,000 val, 1-8 digits of 16-96 px, IF 1000 (with IF 100 the rarest
class would have 40 images and no class would be rare; counts 4000 ... 19, 9, 4; ~340 MB,
~1 min on 2 cores), for GPU runs.

Layout written under ``out_dir`` (default ``data/digits_lt``)::

    train/000001.png ...            val/000001.png ...
    annotations/instances_train.json   annotations/instances_val.json    (COCO)
    annotations/lvis_v1_train.json     annotations/lvis_v1_val.json      (LVIS v1)
    meta.json                          (seed, parameters, class order, per-class counts)

Image paths follow each format's convention. COCO files: ``file_name`` is the image's name
in its split's folder (``'000001.png'``), so configs set ``data_prefix=dict(img='train/')``
(``'val/'``, ``'test/'``) as MMDetection's COCO configs do. LVIS files: ``coco_url`` holds the
path relative to the data root (``'train/000001.png'``) and there is no ``file_name``, as in
LVIS v1, so configs keep ``data_prefix=dict(img='')`` as MMDetection's LVIS configs do (its own
``LVISV1Dataset`` strips ``http://images.cocodataset.org/`` from ``coco_url``, a no-op here).
COCO files: category ids 1..10 for names '0'..'9', boxes
``[x, y, w, h]`` (ints) with ``area = w * h`` and ``iscrowd = 0``; no segmentation.
LVIS annotations have no ``iscrowd``, as in LVIS. Categories carry ``frequency``
(LVIS rule on train image counts), ``image_count``, ``instance_count`` (train counts, the same
in both files, as in LVIS), ``synset``, ``synonyms``, ``def``. Every digit in an image is
annotated, so ``neg_category_ids`` lists every absent class and
``not_exhaustive_category_ids`` is empty: LVIS evaluation of these files equals COCO
evaluation apart from the 300-detection cap.
"""
import dataclasses
import json
import math
import numbers
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..evaluation.frequency import LVIS_THRESHOLDS, frequency_group

NUM_DIGITS = 10
CLASSES: Tuple[str, ...] = tuple(str(d) for d in range(NUM_DIGITS))
DIGIT_WORDS = ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine')
GENERATOR_VERSION = 3
ALL_SPLITS = ('train', 'val', 'test')
IMAGE_NAME = re.compile(r'\d{6}\.png')

PRESETS: Dict[str, Dict[str, Any]] = {
    # RetinaNet R-18 trains on this in minutes on 2 CPU cores.
    'default': dict(image_size=128, train_images=600, val_images=200, max_class_images=500,
                    imbalance_factor=100.0, val_class_images=50, max_digits=4,
                    digit_size=(16, 48), distractors=(2, 6)),
    # For GPU runs. IF 1000 keeps two classes rare (9 and 4 images) at 4,000 images.
    'large': dict(image_size=256, train_images=4000, val_images=1000, max_class_images=4000,
                  imbalance_factor=1000.0, val_class_images=250, max_digits=8,
                  digit_size=(16, 96), distractors=(4, 12)),
    # 100 classes '00'-'99' (two handwritten digits side by side), shuffled frequency ranks,
    # 300 down to 2 training images per class: 22 frequent, 45 common, 33 rare by LVIS's
    # rule; balanced val and test splits with their own source digits.
    'lt100': dict(image_size=128, train_images=1000, val_images=200, test_images=200,
                  max_class_images=300, imbalance_factor=150.0, val_class_images=12,
                  test_class_images=12, min_digits=4, max_digits=8, digit_size=(14, 24),
                  distractors=(2, 6), digits_per_object=2, class_order='shuffled'),
}


@dataclass(frozen=True)
class DigitsLTConfig:
    """Parameters of a digits-LT build (all of them go to ``meta.json``).

    Attributes:
        seed: Seed of every random choice; the same config gives byte-identical files.
        image_size: Side of the square images in pixels.
        train_images: Number of training images.
        val_images: Number of validation images.
        max_class_images: Training images containing the most frequent class (``n_max``).
        imbalance_factor: ``n_max / n_min`` of the exponential profile.
        val_class_images: Validation images containing each class (balanced).
        min_digits: Fewest digits per image.
        max_digits: Most digits per image.
        digit_size: ``(min, max)`` side in pixels of the upsampled 8x8 digit.
        distractors: ``(min, max)`` non-digit clutter marks per image.
        extra_instance_prob: Probability that a class present in an image gets a second
            instance there.
        train_source_fraction: Share of each digit's source samples used for train; the
            rest goes to val, or half to val and half to test when there is a test split.
        class_order: ``'fixed'`` (class k has frequency rank k) or ``'shuffled'`` (by seed).
        digits_per_object: 1: an object is one digit, classes '0'-'9'; 2: an object is a
            two-digit number written side by side, classes '00'-'99'.
        test_images: Number of test images (0: no test split).
        test_class_images: Test images containing each class (balanced).

    Raises:
        ValueError: Naming the parameter, for a count that is not a whole number at least its
            minimum (1 for images and digits, 0 for ``seed`` and the test split), a
            non-finite ``imbalance_factor`` below 1, or inconsistent ranges.
    """
    seed: int = 0
    image_size: int = 128
    train_images: int = 600
    val_images: int = 200
    max_class_images: int = 500
    imbalance_factor: float = 100.0
    val_class_images: int = 50
    min_digits: int = 1
    max_digits: int = 4
    digit_size: Tuple[int, int] = (16, 48)
    distractors: Tuple[int, int] = (2, 6)
    extra_instance_prob: float = 0.15
    train_source_fraction: float = 0.6
    class_order: str = 'fixed'
    digits_per_object: int = 1
    test_images: int = 0
    test_class_images: int = 0

    @classmethod
    def from_preset(cls, preset: str = 'default', **overrides: Any) -> 'DigitsLTConfig':
        """Build a config from a named preset (``'default'`` or ``'large'``) and overrides.

        ``None`` overrides are ignored, so CLI defaults can be passed through.
        """
        if preset not in PRESETS:
            raise ValueError(f'unknown digits-LT preset {preset!r}; choose one of '
                             f'{sorted(PRESETS)}')
        params = dict(PRESETS[preset])
        params.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**params)

    def __post_init__(self) -> None:
        for name, minimum in (('seed', 0), ('image_size', 8), ('train_images', 1),
                              ('val_images', 1), ('max_class_images', 1),
                              ('val_class_images', 1), ('min_digits', 1), ('max_digits', 1),
                              ('test_images', 0), ('test_class_images', 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
                    or value < minimum:
                raise ValueError(f'{name} must be an integer >= {minimum}, got {value!r}')
        if not (isinstance(self.imbalance_factor, numbers.Real)
                and math.isfinite(self.imbalance_factor)):
            raise ValueError(f'imbalance_factor must be a finite number >= 1, got '
                             f'{self.imbalance_factor!r}')
        if not 0 <= self.extra_instance_prob <= 1:
            raise ValueError(f'extra_instance_prob must be in [0, 1], got '
                             f'{self.extra_instance_prob}')
        if not 0 <= self.distractors[0] <= self.distractors[1]:
            raise ValueError(f'distractors {self.distractors} must satisfy 0 <= min <= max')
        lo, hi = self.digit_size
        if not 8 <= lo <= hi <= self.image_size:
            raise ValueError(f'digit_size {self.digit_size} must satisfy 8 <= min <= max <= '
                             f'image_size ({self.image_size})')
        if not 1 <= self.min_digits <= self.max_digits:
            raise ValueError('need 1 <= min_digits <= max_digits')
        if self.imbalance_factor < 1:
            raise ValueError(f'imbalance_factor must be >= 1, got {self.imbalance_factor}')
        if self.class_order not in ('fixed', 'shuffled'):
            raise ValueError("class_order must be 'fixed' or 'shuffled'")
        if not 0 < self.train_source_fraction < 1:
            raise ValueError('train_source_fraction must be in (0, 1)')
        if self.digits_per_object not in (1, 2):
            raise ValueError(f'digits_per_object must be 1 or 2, got {self.digits_per_object}')
        if (self.test_images > 0) != (self.test_class_images > 0):
            raise ValueError('test_images and test_class_images must both be 0 (no test '
                             'split) or both positive')

    @property
    def num_classes(self) -> int:
        """``10 ** digits_per_object``."""
        return NUM_DIGITS ** self.digits_per_object

    @property
    def classes(self) -> Tuple[str, ...]:
        """Class names in label order: '0'..'9', or '00'..'99' for two-digit objects."""
        return tuple(f'{k:0{self.digits_per_object}d}' for k in range(self.num_classes))

    @property
    def splits(self) -> Tuple[str, ...]:
        """``('train', 'val')``, plus ``'test'`` when ``test_images > 0``."""
        return ALL_SPLITS if self.test_images else ALL_SPLITS[:2]

    def class_digits(self, cls: int) -> Tuple[int, ...]:
        """The digits an object of class ``cls`` is written with, left to right."""
        return tuple(int(d) for d in self.classes[cls])

    def to_dict(self) -> Dict[str, Any]:
        """Return the parameters as json-compatible values (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


def long_tail_counts(max_count: int, imbalance_factor: float,
                     num_classes: int = NUM_DIGITS) -> List[int]:
    """Exponential profile ``n_r = round(max_count * IF ** (-r / (C - 1)))``, at least 1.

    Args:
        max_count: Count of the most frequent class (rank 0).
        imbalance_factor: Ratio between the first and the last count.
        num_classes: Number of classes ``C``.

    Returns:
        Counts by rank, most frequent first.
    """
    return [max(1, int(round(max_count * imbalance_factor ** (-r / (num_classes - 1)))))
            for r in range(num_classes)]


def class_ranks(cfg: DigitsLTConfig) -> List[int]:
    """Return the class at each frequency rank, most frequent first."""
    order = list(range(cfg.num_classes))
    if cfg.class_order == 'shuffled':
        order = [int(c) for c in np.random.default_rng([cfg.seed, 7]).permutation(order)]
    return order


def train_class_image_counts(cfg: DigitsLTConfig) -> List[int]:
    """Return the number of training images containing each class, in label order."""
    by_rank = long_tail_counts(cfg.max_class_images, cfg.imbalance_factor, cfg.num_classes)
    counts = [0] * cfg.num_classes
    for rank, cls in enumerate(class_ranks(cfg)):
        counts[cls] = by_rank[rank]
    return counts


# --------------------------------------------------------------------------------------------
# Layout: which digits go into which image
# --------------------------------------------------------------------------------------------

def assign_classes(rng: np.random.Generator, num_images: int, image_counts: Sequence[int],
                   min_per_image: int, max_per_image: int) -> List[List[int]]:
    """Choose, for every class, the images that contain it.

    Classes are placed most frequent first into the images with the most free slots (random
    tie-break with some jitter), which gives every image ``min_per_image`` classes whenever
    the counts allow it.

    Returns:
        Per image, the sorted list of distinct classes it contains.

    Raises:
        ValueError: If the counts cannot fit (a count above ``num_images``, too many or too
            few class-images for the slots).
    """
    total = sum(image_counts)
    if max(image_counts) > num_images or total > num_images * max_per_image \
            or total < num_images * min_per_image:
        raise ValueError(
            f'cannot place {list(image_counts)} class-images into {num_images} images with '
            f'{min_per_image}-{max_per_image} digits each: raise the number of images or '
            'max_digits, or lower max_class_images / val_class_images')
    free = np.full(num_images, max_per_image, dtype=np.int64)
    members: List[List[int]] = [[] for _ in range(num_images)]
    for cls in sorted(range(len(image_counts)), key=lambda c: -image_counts[c]):
        n = image_counts[cls]
        if n == 0:
            continue
        short = np.maximum(min_per_image - (max_per_image - free), 0)  # slots still owed
        keys = free + 4.0 * short + rng.uniform(0, 1.5, num_images)
        keys[free == 0] = -np.inf
        chosen = np.argsort(-keys, kind='stable')[:n]
        if np.isinf(keys[chosen]).any():
            raise ValueError(f'no free slot left for class {cls}; raise max_digits')
        for i in chosen:
            members[i].append(cls)
        free[chosen] -= 1
    if min(len(m) for m in members) < min_per_image:
        raise ValueError(f'some images got fewer than min_digits={min_per_image} classes; '
                         'lower min_digits or raise the class image counts')
    for m in members:
        m.sort()
    return members


def add_extra_instances(rng: np.random.Generator, members: List[List[int]],
                        max_per_image: int, prob: float) -> List[List[int]]:
    """Give each (image, class) pair a second instance with probability ``prob``.

    Only where the image still has a free slot; image counts per class are unchanged.
    """
    out = []
    for classes in members:
        labels = list(classes)
        for cls in classes:
            if len(labels) < max_per_image and rng.random() < prob:
                labels.append(cls)
        out.append(sorted(labels))
    return out


def split_sources(labels: np.ndarray, rng: np.random.Generator, train_fraction: float,
                  splits: Sequence[str] = ALL_SPLITS[:2]) -> Dict[str, List[np.ndarray]]:
    """Split the source digit indices per digit into disjoint pools, one per split.

    Train takes ``train_fraction`` of each digit's samples; val takes the rest, or the first
    half of the rest when there is a test split (which takes the other half).
    """
    pools: Dict[str, List[np.ndarray]] = {split: [] for split in splits}
    for digit in range(NUM_DIGITS):
        idx = rng.permutation(np.flatnonzero(labels == digit))
        n_train = int(round(train_fraction * len(idx)))
        n_val = len(idx) - n_train if 'test' not in splits else (len(idx) - n_train) // 2
        pools['train'].append(np.sort(idx[:n_train]))
        pools['val'].append(np.sort(idx[n_train:n_train + n_val]))
        if 'test' in splits:
            pools['test'].append(np.sort(idx[n_train + n_val:]))
    return pools


Instance = Tuple[int, Tuple[int, ...]]  # (class, source digit index per written digit)


def assign_sources(rng: np.random.Generator, layout: List[List[int]], pools: List[np.ndarray],
                   cfg: DigitsLTConfig) -> List[List[Instance]]:
    """Pair every written digit of every instance with a source sample of that digit.

    Each digit cycles through a shuffled pool of its samples, so a digit uses distinct
    handwritten samples until its pool is exhausted (the rare classes are all different
    handwriting).
    """
    perms = [rng.permutation(p) for p in pools]
    used = [0] * NUM_DIGITS
    out = []
    for labels in layout:
        row = []
        for cls in labels:
            sources = []
            for digit in cfg.class_digits(cls):
                pool = perms[digit]
                sources.append(int(pool[used[digit] % len(pool)]))
                used[digit] += 1
            row.append((cls, tuple(sources)))
        out.append(row)
    return out


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def render_digit(digit: np.ndarray, height: int, width: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Upsample an 8x8 digit (values 0..16) to soft ink alpha of shape ``(height, width)``.

    Bicubic upsampling plus a random threshold (stroke weight) and a soft edge.
    """
    import cv2
    img = np.pad(digit.reshape(8, 8).astype(np.float32) / 16.0, 1)
    up = cv2.resize(img, (width + 2 * width // 8, height + 2 * height // 8),
                    interpolation=cv2.INTER_CUBIC)
    up = up[height // 8:height // 8 + height, width // 8:width // 8 + width]
    threshold = rng.uniform(0.3, 0.55)
    return _smoothstep((up - threshold) / 0.2).astype(np.float32)


def ink_box(alpha: np.ndarray) -> Optional[Tuple[int, int, int, int]]:
    """Tight box ``(x0, y0, x1, y1)`` (exclusive ends) of pixels with alpha > 0.5."""
    ys, xs = np.nonzero(alpha > 0.5)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    import cv2
    paper = rng.uniform(175, 245) + rng.uniform(-12, 12, 3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx + np.sin(angle) * yy - 0.5) * rng.uniform(-50, 50)
    blotch = cv2.resize(rng.normal(0, 1, (4, 4)).astype(np.float32), (size, size),
                        interpolation=cv2.INTER_CUBIC) * rng.uniform(4, 16)
    img = paper[None, None, :] + (ramp + blotch)[..., None]
    grain = rng.normal(0, 1, (size, size)).astype(np.float32)  # paper grain, mild blur keeps
    grain = cv2.GaussianBlur(grain, (0, 0), 0.7) * rng.uniform(2, 6)  # the PNGs small
    img = img + grain[..., None]
    for _ in range(int(rng.integers(0, 4))):  # faint ruled lines / long strokes
        p0, p1 = rng.integers(0, size, 2), rng.integers(0, size, 2)
        shade = float(rng.uniform(100, 190))
        cv2.line(img, tuple(map(int, p0)), tuple(map(int, p1)), (shade,) * 3, 1, cv2.LINE_AA)
    return img.astype(np.float32)


def _ink_color(rng: np.random.Generator) -> Tuple[float, float, float]:
    base = rng.uniform(10, 70)
    tint = rng.uniform(-10, 40, 3) * (rng.random() < 0.4)  # sometimes blue/red-ish ink
    return tuple(float(v) for v in np.clip(base + tint, 0, 120))


def _draw_distractor(img: np.ndarray, rng: np.random.Generator, size: int,
                     mark_size: Tuple[int, int]) -> None:
    """Draw one non-digit clutter mark in ink colours."""
    import cv2
    s = int(rng.integers(mark_size[0], mark_size[1] + 1))
    x, y = (int(v) for v in rng.integers(0, max(1, size - s), 2))
    color, thick = _ink_color(rng), int(rng.integers(1, 3))
    kind = int(rng.integers(0, 5))
    if kind == 0:  # scribble
        pts = rng.integers(0, s, (int(rng.integers(3, 7)), 2)) + [x, y]
        cv2.polylines(img, [pts.astype(np.int32)], False, color, thick, cv2.LINE_AA)
    elif kind == 1:  # open arc (never a closed loop, which would read as '0')
        start = float(rng.uniform(0, 360))
        cv2.ellipse(img, (x + s // 2, y + s // 2), (max(2, s // 2), max(2, s // 3)),
                    float(rng.uniform(0, 180)), start, start + float(rng.uniform(60, 200)),
                    color, thick, cv2.LINE_AA)
    elif kind == 2:  # cross
        cv2.line(img, (x, y), (x + s, y + s), color, thick, cv2.LINE_AA)
        cv2.line(img, (x + s, y), (x, y + s), color, thick, cv2.LINE_AA)
    elif kind == 3:  # dots
        for _ in range(int(rng.integers(2, 6))):
            c = (int(x + rng.integers(0, s)), int(y + rng.integers(0, s)))
            cv2.circle(img, c, int(rng.integers(1, 3)), color, -1, cv2.LINE_AA)
    else:  # bar / smudge
        w, h = max(2, s), int(rng.integers(2, 5))
        cv2.rectangle(img, (x, y), (x + w, y + h), color, -1)


def _place(boxes: List[Tuple[int, int, int, int]], w: int, h: int, size: int,
           rng: np.random.Generator, tries: int = 40) -> Optional[Tuple[int, int]]:
    """Find a top-left corner where a ``w`` x ``h`` box keeps 2 px from ``boxes``."""
    for _ in range(tries):
        x, y = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
        if all(x + w + 2 <= bx0 or bx1 + 2 <= x or y + h + 2 <= by0 or by1 + 2 <= y
               for bx0, by0, bx1, by1 in boxes):
            return x, y
    return None


def _render_digit_ink(digit: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """Render a digit of height ``side`` and crop it to its ink box."""
    height = side
    width = max(8, int(round(side * rng.uniform(0.75, 1.05))))
    for _ in range(5):
        alpha = render_digit(digit, height, width, rng)
        box = ink_box(alpha)
        if box is not None:
            x0, y0, x1, y1 = box
            return alpha[y0:y1, x0:x1]
    raise RuntimeError('a source digit rendered with no ink; this is a bug in digits_lt')


def _render_instance(digits: Sequence[np.ndarray], side: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Ink alpha of an object, cropped to its ink box.

    One digit, or several written left to right at the same height, 1 px to ``side / 6``
    apart, each shifted up or down by up to ``side / 10`` (handwriting on no ruled line).
    """
    inks = [_render_digit_ink(digit, side, rng) for digit in digits]
    if len(inks) == 1:
        return inks[0]
    gaps = [int(rng.integers(1, max(2, side // 6) + 1)) for _ in inks[1:]]
    shifts = [int(rng.integers(-(side // 10), side // 10 + 1)) for _ in inks]
    top = min(shifts)
    height = max(s - top + ink.shape[0] for s, ink in zip(shifts, inks))
    width = sum(ink.shape[1] for ink in inks) + sum(gaps)
    alpha = np.zeros((height, width), np.float32)
    x = 0
    for ink, shift, gap in zip(inks, shifts, [0] + gaps):
        x += gap
        y = shift - top
        np.maximum(alpha[y:y + ink.shape[0], x:x + ink.shape[1]], ink,
                   out=alpha[y:y + ink.shape[0], x:x + ink.shape[1]])
        x += ink.shape[1]
    x0, y0, x1, y1 = ink_box(alpha)
    return alpha[y0:y1, x0:x1]


def render_patch(rng: np.random.Generator, digit: np.ndarray, size: int,
                 digit_size: Tuple[int, int]) -> np.ndarray:
    """One digit at a random height in ``digit_size`` and place on a ``size`` x ``size`` patch
    of cluttered paper (0-2 clutter marks), in the generator's inks: uint8 RGB."""
    img = _background(rng, size)
    for _ in range(int(rng.integers(0, 3))):
        _draw_distractor(img, rng, size, (4, max(6, size // 3)))
    alpha = _render_instance([digit], int(rng.integers(digit_size[0], digit_size[1] + 1)), rng)
    alpha = alpha[:size, :size]
    h, w = alpha.shape
    x, y = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
    color = np.array(_ink_color(rng), dtype=np.float32)
    a = alpha[..., None] * rng.uniform(0.85, 1.0)
    img[y:y + h, x:x + w] = img[y:y + h, x:x + w] * (1 - a) + color * a
    return np.clip(img, 0, 255).astype(np.uint8)


def render_image(rng: np.random.Generator, instances: Sequence[Instance],
                 digits: np.ndarray, cfg: DigitsLTConfig) -> Tuple[np.ndarray, List[dict]]:
    """Render one image.

    Args:
        rng: The image's own generator.
        instances: ``(class, source indices)`` per object to paste.
        digits: The ``(1797, 64)`` source array.
        cfg: Generator parameters.

    Returns:
        ``(image uint8 HxWx3 RGB, [dict(label, bbox=[x, y, w, h]), ...])``.
    """
    size = cfg.image_size
    img = _background(rng, size)
    lo, hi = cfg.digit_size
    for _ in range(int(rng.integers(cfg.distractors[0], cfg.distractors[1] + 1))):
        _draw_distractor(img, rng, size, (max(4, lo // 2), max(6, hi // 2)))
    boxes: List[Tuple[int, int, int, int]] = []
    objects = []
    for cls, sources in instances:
        side = int(rng.integers(lo, hi + 1))
        while True:
            alpha = _render_instance([digits[src] for src in sources], side, rng)
            h, w = alpha.shape
            spot = _place(boxes, w, h, size, rng)
            if spot is not None or side <= lo:
                break
            side = max(lo, int(side * 0.8))
        if spot is None:  # crowded even at the smallest size: allow overlap, keep the count
            spot = (int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1)))
        x, y = spot
        color = np.array(_ink_color(rng), dtype=np.float32)
        a = alpha[..., None] * rng.uniform(0.85, 1.0)
        region = img[y:y + h, x:x + w]
        img[y:y + h, x:x + w] = region * (1 - a) + color * a
        boxes.append((x, y, x + w, y + h))
        objects.append(dict(label=cls, bbox=[x, y, w, h]))
    return np.clip(img, 0, 255).astype(np.uint8), objects


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

def load_source_digits() -> Tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 handwritten digits: ``(images (1797, 64) float32 0..16, labels)``."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - declared dependency
        raise ImportError('digits-LT needs scikit-learn: pip install scikit-learn') from err
    data = load_digits()
    return data.data.astype(np.float32), data.target.astype(np.int64)


def _split_layouts(cfg: DigitsLTConfig, rng: np.random.Generator,
                   labels: np.ndarray) -> Dict[str, List[List[Instance]]]:
    pools = split_sources(labels, rng, cfg.train_source_fraction, cfg.splits)
    counts = {'train': train_class_image_counts(cfg),
              'val': [cfg.val_class_images] * cfg.num_classes,
              'test': [cfg.test_class_images] * cfg.num_classes}
    images = {'train': cfg.train_images, 'val': cfg.val_images, 'test': cfg.test_images}
    layouts = {}
    for split in cfg.splits:
        members = assign_classes(rng, images[split], counts[split], cfg.min_digits,
                                 cfg.max_digits)
        members = add_extra_instances(rng, members, cfg.max_digits, cfg.extra_instance_prob)
        layouts[split] = assign_sources(rng, members, pools[split], cfg)
    return layouts


def _render_split(cfg: DigitsLTConfig, split: str, layout: List[List[Instance]],
                  digits: np.ndarray, img_dir: str) -> Tuple[List[dict], List[dict]]:
    import cv2
    images, annotations = [], []
    for i, instances in enumerate(layout):
        img_id = i + 1
        rng = np.random.default_rng([cfg.seed, ALL_SPLITS.index(split), img_id])
        img, objects = render_image(rng, instances, digits, cfg)
        file_name = f'{img_id:06d}.png'  # in the split's folder (COCO's convention)
        cv2.imwrite(os.path.join(img_dir, file_name), img[..., ::-1])
        images.append(dict(id=img_id, file_name=file_name, width=cfg.image_size,
                           height=cfg.image_size))
        for obj in objects:
            w, h = obj['bbox'][2], obj['bbox'][3]
            annotations.append(dict(id=len(annotations) + 1, image_id=img_id,
                                    category_id=obj['label'] + 1, bbox=obj['bbox'],
                                    area=w * h, iscrowd=0))
    return images, annotations


def class_statistics(images: List[dict], annotations: List[dict],
                     num_classes: int = NUM_DIGITS) -> Dict[str, List[int]]:
    """Per-class ``image_counts`` and ``instance_counts`` (label order) of one split."""
    inst = [0] * num_classes
    imgs: List[set] = [set() for _ in range(num_classes)]
    for a in annotations:
        inst[a['category_id'] - 1] += 1
        imgs[a['category_id'] - 1].add(a['image_id'])
    return dict(image_counts=[len(s) for s in imgs], instance_counts=inst)


def coco_json(images: List[dict], annotations: List[dict], split: str,
              classes: Sequence[str] = CLASSES) -> Dict[str, Any]:
    """COCO instances json of one split."""
    supercategory = 'digit' if len(classes[0]) == 1 else 'number'
    categories = [dict(id=i + 1, name=name, supercategory=supercategory)
                  for i, name in enumerate(classes)]
    info = dict(description=f'digits-LT {split} (imbfocal)', version=str(GENERATOR_VERSION))
    return dict(info=info, licenses=[], images=images, annotations=annotations,
                categories=categories)


def _category_words(name: str) -> Dict[str, Any]:
    """LVIS's ``synset``, ``synonyms`` and ``def`` of a class name ('7' or '07')."""
    words = ' '.join(DIGIT_WORDS[int(d)] for d in name)
    if len(name) == 1:
        return dict(synset=f'digit_{words}.n.01', synonyms=[name, words],
                    def_=f'the handwritten digit {name} ({words})')
    return dict(synset=f"number_{words.replace(' ', '_')}.n.01", synonyms=[name, words],
                def_=f'the handwritten two-digit number {name} ({words})')


def lvis_json(images: List[dict], annotations: List[dict], split: str,
              train_stats: Dict[str, List[int]],
              classes: Sequence[str] = CLASSES) -> Dict[str, Any]:
    """LVIS v1 json of one split; category statistics always come from the train split."""
    categories = []
    for i, name in enumerate(classes):
        n_img = train_stats['image_counts'][i]
        words = _category_words(name)
        categories.append({
            'id': i + 1, 'name': name, 'synset': words['synset'],
            'synonyms': words['synonyms'], 'def': words['def_'],
            'frequency': frequency_group(n_img, LVIS_THRESHOLDS), 'image_count': n_img,
            'instance_count': train_stats['instance_counts'][i]})
    present: Dict[int, set] = {img['id']: set() for img in images}
    for a in annotations:
        present[a['image_id']].add(a['category_id'])
    all_ids = set(range(1, len(classes) + 1))
    lvis_images = []
    for img in images:
        lvis_images.append(dict(
            id=img['id'], coco_url=f"{split}/{img['file_name']}",
            width=img['width'],
            height=img['height'], neg_category_ids=sorted(all_ids - present[img['id']]),
            not_exhaustive_category_ids=[]))
    lvis_anns = [{k: a[k] for k in ('id', 'image_id', 'category_id', 'bbox', 'area')}
                 for a in annotations]
    info = dict(description=f'digits-LT {split} (imbfocal), LVIS v1 format',
                version=str(GENERATOR_VERSION))
    return dict(info=info, licenses=[], images=lvis_images, annotations=lvis_anns,
                categories=categories)


def _check_split_folders(out_dir: str) -> None:
    """Refuse before writing anything when a split folder of ``out_dir`` holds a file digits-LT
    did not write (a build replaces its split folders whole), or when a file stands where a
    build writes a folder.

    Raises:
        FileExistsError: Naming the folder and the file.
    """
    for name in ('annotations', ) + ALL_SPLITS:
        path = os.path.join(out_dir, name)
        if os.path.lexists(path) and not os.path.isdir(path):
            raise FileExistsError(f'{path} is a file digits-LT did not write, where a build '
                                  'writes a folder; choose an empty or digits-LT output folder')
        if name == 'annotations':
            continue
        foreign = sorted(n for n in os.listdir(path) if not IMAGE_NAME.fullmatch(n)) \
            if os.path.isdir(path) else []
        if foreign:
            raise FileExistsError(f'{path} holds files digits-LT did not write (e.g. '
                                  f'{foreign[0]!r}); choose an empty or digits-LT output folder')


def _is_build_entry(name: str) -> bool:
    """Whether a top-level entry of an output folder is one a build writes (and replaces)."""
    return name in ALL_SPLITS or name == 'meta.json'


def _build_annotation_names() -> List[str]:
    return [f'{kind}_{split}.json' for kind in ('instances', 'lvis_v1') for split in ALL_SPLITS]


def _carry_over(old: str, new: str) -> None:
    """Move what the earlier contents of the output folder held beside a build (a pretrained
    backbone, a user's annotation file) into the new build."""
    for name in os.listdir(old):
        if _is_build_entry(name):
            continue
        if name == 'annotations' and os.path.isdir(os.path.join(old, name)):
            ours = set(_build_annotation_names())
            for ann in os.listdir(os.path.join(old, name)):
                if ann not in ours:
                    os.rename(os.path.join(old, name, ann), os.path.join(new, name, ann))
            continue
        os.rename(os.path.join(old, name), os.path.join(new, name))


def _swap_in(build: str, target: str) -> None:
    """Put the finished ``build`` folder at ``target`` (a sibling) in one rename, keeping the
    files of an earlier ``target`` that a build does not write."""
    if not os.path.lexists(target):
        os.rename(build, target)
        return
    old = os.path.join(os.path.dirname(build),
                       os.path.basename(build).replace('.building-', '.replaced-'))
    os.rename(target, old)
    try:
        os.rename(build, target)
    except OSError:
        os.rename(old, target)
        raise
    _carry_over(old, target)
    shutil.rmtree(old)


def _new_build_folder(target: str) -> str:
    """A hidden empty sibling of ``target`` to write a build into, with a normal folder's
    permissions (``mkdtemp``'s are owner-only)."""
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    build = tempfile.mkdtemp(prefix=f'.{os.path.basename(target)}.building-', dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(build, 0o777 & ~umask)
    return build


def _dump(obj: Any, path: str) -> None:
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(obj, f, separators=(',', ':'))


def expected_files(out_dir: str, splits: Sequence[str] = ALL_SPLITS[:2]) -> List[str]:
    """The annotation and meta files a complete build of ``splits`` has."""
    names = [f'annotations/{p}_{s}.json' for p in ('instances', 'lvis_v1') for s in splits]
    return [os.path.join(out_dir, n) for n in names + ['meta.json']]


def read_meta(out_dir: str) -> Optional[Dict[str, Any]]:
    """The ``meta.json`` of a digits-LT build in ``out_dir``, or None (missing, unreadable,
    truncated, or not written by this generator)."""
    try:
        with open(os.path.join(out_dir, 'meta.json'), encoding='utf-8') as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get('generator') != 'imbfocal.datasets.digits_lt':
        return None
    return meta


def is_up_to_date(out_dir: str, cfg: DigitsLTConfig) -> bool:
    """True if ``out_dir`` holds a complete build of exactly ``cfg``."""
    if not all(os.path.isfile(p) for p in expected_files(out_dir, cfg.splits)):
        return False
    meta = read_meta(out_dir)
    if meta is None or meta.get('version') != GENERATOR_VERSION or \
            meta.get('params') != cfg.to_dict():
        return False
    return all(os.path.isdir(os.path.join(out_dir, s)) and
               len(os.listdir(os.path.join(out_dir, s))) == meta.get(s, {}).get('images')
               for s in cfg.splits)


def check_out_dir(out_dir: str, force: bool = False) -> None:
    """Refuse to write into a non-empty folder that holds no digits-LT build.

    Raises:
        FileExistsError: Naming the folder and ``force`` (``--force``).
    """
    if force or not os.path.isdir(out_dir) or not os.listdir(out_dir):
        return
    if read_meta(out_dir) is None:
        raise FileExistsError(
            f'{out_dir} is not empty and holds no digits-LT build (no readable meta.json '
            'written by this generator); choose an empty or new folder, or pass force=True '
            '(--force) to write into it: the files a build writes would be replaced')


def generate_digits_lt(out_dir: str = 'data/digits_lt',
                       cfg: Optional[DigitsLTConfig] = None,
                       force: bool = False) -> Dict[str, Any]:
    """Write a digits-LT build to ``out_dir`` (layout in the module docstring).

    ``out_dir`` must be new, empty or an earlier digits-LT build (``force`` writes into any
    folder). Everything is checked first (the folder, its split folders, whether the class
    counts fit the images); then the build is written into a hidden sibling folder
    (``.<name>.building-*``) and swapped in whole, so an error or an interruption leaves
    ``out_dir`` as it was, never half new and half old. The new build replaces the split
    folders, the six annotation files and ``meta.json`` of an earlier one; anything else in
    ``out_dir`` (a pretrained backbone, a user's file) is kept. A split folder holding a file
    other than digits-LT images is an error (nothing is deleted but digits-LT images). A run
    killed while writing leaves its hidden sibling behind, which may be deleted.

    Args:
        out_dir: Output folder.
        cfg: Parameters; ``DigitsLTConfig()`` (the default preset, seed 0) if None.
        force: Write into a non-empty folder that holds no digits-LT build. Defaults to False.

    Returns:
        The ``meta.json`` content.

    Raises:
        FileExistsError: For a foreign non-empty folder without ``force``, or foreign files
            in a split folder.
        ValueError: If the class counts cannot be placed into the images.
    """
    from mmengine.logging import MMLogger, print_log
    cfg = cfg or DigitsLTConfig()
    check_out_dir(out_dir, force)
    _check_split_folders(out_dir)
    tic = time.time()
    digits, labels = load_source_digits()
    layouts = _split_layouts(cfg, np.random.default_rng(cfg.seed), labels)
    target = os.path.realpath(out_dir)
    build = _new_build_folder(target)
    try:
        meta = _write_build(build, cfg, layouts, digits, tic)
        _swap_in(build, target)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    groups = {g: sum(f == g for f in meta['train']['frequency'].values()) for g in 'rcf'}
    print_log(f"digits-LT written to {out_dir} in {meta['seconds']:.1f}s: "
              + ' / '.join(f"{meta[s]['images']} {s}" for s in cfg.splits)
              + f" images, {cfg.num_classes} classes (train: {groups['r']} rare, "
              f"{groups['c']} common, {groups['f']} frequent)",
              logger=MMLogger.get_current_instance())
    return meta


def _write_build(out_dir: str, cfg: DigitsLTConfig, layouts: Dict[str, list],
                 digits: np.ndarray, tic: float) -> Dict[str, Any]:
    """Render every split and write images, annotations and ``meta.json`` into the empty
    ``out_dir``; return the meta."""
    os.makedirs(os.path.join(out_dir, 'annotations'))
    stats, coco = {}, {}
    for split in cfg.splits:
        img_dir = os.path.join(out_dir, split)
        os.makedirs(img_dir)
        images, anns = _render_split(cfg, split, layouts[split], digits, img_dir)
        coco[split] = (images, anns)
        stats[split] = class_statistics(images, anns, cfg.num_classes)
        _dump(coco_json(images, anns, split, cfg.classes),
              os.path.join(out_dir, 'annotations', f'instances_{split}.json'))
    for split in cfg.splits:
        _dump(lvis_json(*coco[split], split, stats['train'], cfg.classes),
              os.path.join(out_dir, 'annotations', f'lvis_v1_{split}.json'))
    meta = _meta(cfg, layouts, stats, coco, time.time() - tic)
    with open(os.path.join(out_dir, 'meta.json'), 'w', encoding='utf-8') as f:
        json.dump(meta, f, indent=1)
    return meta


def _meta(cfg: DigitsLTConfig, layouts: Dict[str, list], stats: Dict[str, dict],
          coco: Dict[str, tuple], seconds: float) -> Dict[str, Any]:
    meta: Dict[str, Any] = dict(
        generator='imbfocal.datasets.digits_lt', version=GENERATOR_VERSION, seed=cfg.seed,
        params=cfg.to_dict(), classes=list(cfg.classes),
        frequency_rank=[cfg.classes[c] for c in class_ranks(cfg)], seconds=round(seconds, 2))
    for split in cfg.splits:
        sources = sorted({src for row in layouts[split] for _, srcs in row for src in srcs})
        meta[split] = dict(images=len(coco[split][0]), instances=len(coco[split][1]),
                           image_counts=dict(zip(cfg.classes, stats[split]['image_counts'])),
                           instance_counts=dict(zip(cfg.classes,
                                                    stats[split]['instance_counts'])),
                           source_indices=sources)
    meta['train']['frequency'] = {
        name: frequency_group(n) for name, n in meta['train']['image_counts'].items()}
    return meta

