#!/usr/bin/env python
"""Pretrain the digits-LT detectors' backbone on the train split's single digits.

The lt100 configs start from it, as LVIS detectors start from ImageNet weights (see
``imbfocal/datasets/digits_pretraining.py``). Idempotent: a backbone already pretrained with
the same parameters on the same build is kept (``--force`` redoes it).

Example::

    python tools/make_digits_lt.py --preset lt100 --out data/digits_lt100
    python tools/pretrain_digits_backbone.py --data-root data/digits_lt100
"""
import argparse
import sys

from imbfocal.datasets.digits_pretraining import PretrainConfig, is_pretrained, pretrain_backbone


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data-root', default='data/digits_lt100', help='a digits-LT build')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--force', action='store_true', help='pretrain even if up to date')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = PretrainConfig(seed=args.seed)
    try:
        if not args.force and is_pretrained(args.data_root, cfg):
            print(f'the backbone in {args.data_root}/pretrained is up to date; nothing to do '
                  '(--force redoes it)')
            return 0
        meta = pretrain_backbone(args.data_root, cfg)
    except FileNotFoundError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    print(f"pretrained in {meta['seconds']} s, val-split digit accuracy "
          f"{meta['val_digit_accuracy']:.3f}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
