#!/usr/bin/env python
"""Generate the digits-LT long-tailed detection set (see ``imbfocal/datasets/digits_lt.py``).

Examples::

    python tools/make_digits_lt.py                       # data/digits_lt, default preset
    python tools/make_digits_lt.py --preset large --out data/digits_lt_large

Idempotent: when ``--out`` already holds a complete build with the same parameters
(``meta.json``), it says so and writes nothing; otherwise the build is written beside it and
swapped in whole. Every argument and the output folder are checked before anything is written;
a bad one ends the tool with a one-line error and exit status 2.
"""
import argparse
import math
import os
import sys

from imbfocal.cli import at_least
from imbfocal.datasets.digits_lt import PRESETS, DigitsLTConfig, generate_digits_lt, is_up_to_date


def imbalance_factor(text: str) -> float:
    """An argparse type: a finite number ``>= 1``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'must be a number, got {text!r}') from None
    if not math.isfinite(value) or value < 1:
        raise argparse.ArgumentTypeError(f'must be a finite number >= 1, got {text}')
    return value


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default='data/digits_lt', help='output folder')
    p.add_argument('--preset', default='default', choices=sorted(PRESETS),
                   help='size preset; the options below override it')
    p.add_argument('--seed', type=at_least(0), default=0)
    p.add_argument('--imbalance-factor', type=imbalance_factor, default=None,
                   help='n_max / n_min of the train image counts (preset: 100 default, '
                   '1000 large)')
    p.add_argument('--image-size', type=at_least(8), default=None)
    p.add_argument('--train-images', type=at_least(1), default=None)
    p.add_argument('--val-images', type=at_least(1), default=None)
    p.add_argument('--max-class-images', type=at_least(1), default=None,
                   help='training images containing the most frequent class')
    p.add_argument('--val-class-images', type=at_least(1), default=None,
                   help='validation images containing each class')
    p.add_argument('--max-digits', type=at_least(1), default=None,
                   help='digits per image, at most')
    p.add_argument('--class-order', choices=('fixed', 'shuffled'), default=None,
                   help="fixed: '0' most frequent ... '9' rarest; shuffled: by seed")
    p.add_argument('--force', action='store_true',
                   help='regenerate even if up to date, and write into a folder that holds '
                   'no digits-LT build')
    args = p.parse_args(argv)
    if os.path.lexists(args.out) and not os.path.isdir(args.out):
        p.error(f'--out {args.out} is a file; give a folder')
    try:
        args.cfg = DigitsLTConfig.from_preset(
            args.preset, seed=args.seed, imbalance_factor=args.imbalance_factor,
            image_size=args.image_size, train_images=args.train_images,
            val_images=args.val_images, max_class_images=args.max_class_images,
            val_class_images=args.val_class_images, max_digits=args.max_digits,
            class_order=args.class_order)
    except ValueError as error:
        p.error(str(error))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.force and is_up_to_date(args.out, args.cfg):
        print(f'digits-LT in {args.out} is up to date (same parameters in meta.json); '
              'nothing to do (--force regenerates)')
        return 0
    try:
        meta = generate_digits_lt(args.out, args.cfg, force=args.force)
    except (OSError, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    splits = ' / '.join(f"{meta[split]['images']} {split}"
                        for split in ('train', 'val', 'test') if split in meta)
    print(f"digits-LT: {splits} images in {args.out} ({meta['seconds']:.1f}s)")
    return 0


if __name__ == '__main__':
    sys.exit(main())
