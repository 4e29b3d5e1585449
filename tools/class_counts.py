"""Write a class counts file for ``class_counts=`` of the count-weighted losses.

Examples:
    python tools/class_counts.py configs/retinanet/retinanet_r50_fpn_afl_1x_lvis-v1.py \
        --out lvis_counts.json
    python tools/class_counts.py data/coco/annotations/instances_train2017.json \
        --out coco_image_counts.json --count-type images

From a config, the training dataset (``train_dataloader.dataset``) is built through
MMDetection's registry and counted with ``imbfocal.class_counts.counts_from_dataset``; from an
annotation json (COCO or LVIS, any case of ``.json``) with ``load_class_counts``. The file
format is described in ``imbfocal/class_counts.py``.

Every argument is checked before anything is counted (the source exists, ``--out`` is a file
that can be written and is neither the source nor a file of another kind); a bad one, or a
source that cannot be counted, ends the tool with a one-line error and exit status 2.
"""
import argparse
import os
import sys
from typing import List, Optional

from imbfocal.class_counts import (
    COUNT_TYPES,
    Counts,
    counts_from_dataset,
    is_counts_file,
    load_class_counts,
    save_class_counts,
)
from imbfocal.cli import check_output_file


def is_json(path: str) -> bool:
    """Whether ``path`` names a json file (``.json`` in any case), not a config."""
    return path.lower().endswith('.json')


def counts_from_config(config: str, count_type: str, cfg_options: Optional[dict]) -> Counts:
    """Build the training dataset of an MMDetection config and count it.

    Raises:
        ValueError: For a config that does not load, has no ``train_dataloader.dataset`` or
            names a dataset type no registry holds.
    """
    from mmdet.registry import DATASETS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings

    import imbfocal  # noqa: F401  (registers the plugin before the config's types are built)

    try:
        cfg = Config.fromfile(config)
    except (SyntaxError, ImportError) as error:
        raise ValueError(f'{config} does not load as a config: {error}') from None
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    dataset = cfg.get('train_dataloader', {}).get('dataset')
    if dataset is None:
        raise ValueError(f'{config} has no train_dataloader.dataset to count; give the '
                         'training config, or the training annotation json')
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    try:
        built = DATASETS.build(dataset)
    except KeyError as error:  # an unknown type: the registry's message, on one line
        raise ValueError(f'{config}: {error.args[0] if error.args else error}') from None
    return counts_from_dataset(built, count_type)


def check_out(out: str, source: str, force: bool) -> None:
    """Refuse an ``--out`` that cannot be written, is the source, or is another kind of file.

    Raises:
        OSError: Naming the file, and ``--force`` where that applies.
    """
    check_output_file(out, 'the counts file')
    if os.path.exists(out) and os.path.exists(source) and os.path.samefile(out, source):
        raise FileExistsError(f'--out {out} is the source file itself; write the counts to '
                              'another file')
    if os.path.exists(out) and not force and not is_counts_file(out):
        raise FileExistsError(f'{out} exists and is not a counts file; choose another --out, '
                              'or pass --force to replace it')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The arguments, each checked (``parser.error``: exit 2) before anything is counted."""
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('source', help='an MMDetection config, or a COCO / LVIS annotation json')
    parser.add_argument('--out', required=True, help='counts file to write (json)')
    parser.add_argument('--count-type', choices=COUNT_TYPES, default='instances',
                        help='count boxes per class (instances) or images per class')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, as in MMDetection tools')
    parser.add_argument('--force', action='store_true',
                        help='replace --out even if it is not a counts file')
    args = parser.parse_args(argv)
    if not os.path.isfile(args.source):
        parser.error(f'{args.source} is not a file; give an MMDetection config or a COCO / '
                     'LVIS annotation json')
    if is_json(args.source) and args.cfg_options:
        parser.error('--cfg-options applies to a config, not to an annotation json')
    try:
        check_out(args.out, args.source, args.force)
    except OSError as error:
        parser.error(str(error))
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        if is_json(args.source):
            counts, names = load_class_counts(args.source, args.count_type)
        else:
            counts, names = counts_from_config(args.source, args.count_type, args.cfg_options)
        save_class_counts(args.out, counts, names, args.count_type, source=args.source)
    except (OSError, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    print(f'{os.path.abspath(args.out)}: {len(counts)} classes, {sum(counts)} '
          f'{args.count_type} in all, {sum(c == 0 for c in counts)} classes with none',
          file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
