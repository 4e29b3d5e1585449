"""Find, list and copy the configs imbfocal ships, as ``mim`` does for MMDetection's.

The configs live in ``configs/`` of a source checkout and are installed with the package as
``imbfocal/.mim/configs`` (a wheel from ``pip install .`` carries them)::

    python -m imbfocal.configs list lt100                 # the config names matching 'lt100'
    python -m imbfocal.configs path retinanet_r18_fpn_afl_800it_digits-lt100
    python -m imbfocal.configs copy retinanet_r18_fpn_afl_800it_digits-lt100 --dest my_configs

``path`` prints a file that MMDetection's ``tools/train.py`` takes as it is (its ``_base_``
files lie beside it); ``copy`` writes the config with its bases resolved into one file, as
``mim download`` does, never over an existing file. A name may carry its detector folder
(``retinanet/NAME``). Errors are one line on stderr: an unknown name exits 2 (naming the
closest names, or the folder the config is in), ``list`` without a match exits 1, as ``grep``
does.
"""
import argparse
import difflib
import os
import sys
from pathlib import Path
from typing import List, Optional


def config_root() -> Path:
    """The folder holding the shipped configs (``<detector>/<name>.py`` and ``_base_/``)."""
    return Path(__file__).resolve().parent / '.mim' / 'configs'


def list_configs(pattern: str = '') -> List[str]:
    """Names (without ``.py``) of the shipped configs containing ``pattern``, sorted;
    ``DETECTOR/PATTERN`` (``retinanet/afl``) keeps those under that detector's folder."""
    folder, _, pattern = pattern.rpartition('/')
    return sorted(path.stem for path in config_root().glob('*/*.py')
                  if path.parent.name != '_base_' and folder in ('', path.parent.name)
                  and pattern in path.stem)


def config_path(name: str) -> Path:
    """The file of the shipped config ``name``: its name, with or without ``.py`` and with or
    without its detector folder (``retinanet/NAME``).

    Raises:
        FileNotFoundError: Naming the closest configs, or how to list them all.
    """
    stem = Path(name).name
    stem = stem[:-3] if stem.endswith('.py') else stem
    folder = Path(name).parent.name
    matches = [p for p in config_root().glob(f'*/{stem}.py')
               if p.parent.name != '_base_' and folder in ('', p.parent.name)]
    elsewhere = [p.parent.name for p in config_root().glob(f'*/{stem}.py')
                 if p.parent.name != '_base_']
    if not matches and elsewhere:
        raise FileNotFoundError(f'no shipped config named {name!r}; {stem} is under '
                                f'{elsewhere[0]}/: {elsewhere[0]}/{stem}')
    if len(matches) != 1:
        close = difflib.get_close_matches(stem, list_configs(), n=5, cutoff=0.6)
        hint = f'closest: {close}' if close else \
            f'`python -m imbfocal.configs list` lists all {len(list_configs())}'
        raise FileNotFoundError(f'no shipped config named {name!r}; {hint}')
    return matches[0]


def copy_config(name: str, dest: str) -> Path:
    """Write config ``name`` with its bases resolved to ``dest/<name>.py``.

    Raises:
        FileExistsError: If that file exists already.
    """
    from mmengine.config import Config

    source = config_path(name)
    out = Path(dest) / source.name
    if out.exists():
        raise FileExistsError(f'{out} exists; choose another --dest or remove it first')
    os.makedirs(dest, exist_ok=True)
    Config.fromfile(str(source)).dump(str(out))
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m imbfocal.configs',
                                     description=__doc__.split('\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    listing = commands.add_parser(
        'list', help='the shipped config names (containing PATTERN; DETECTOR/PATTERN: under '
        "that detector's folder)")
    listing.add_argument('pattern', nargs='?', default='')
    path = commands.add_parser('path', help="a shipped config's file")
    path.add_argument('name')
    copy = commands.add_parser('copy', help='write configs, bases resolved, into --dest')
    copy.add_argument('names', nargs='+')
    copy.add_argument('--dest', default='.')
    args = parser.parse_args(argv)
    try:
        if args.command == 'list':
            names = list_configs(args.pattern)
            if not names:
                print(f'error: no shipped config name contains {args.pattern!r}',
                      file=sys.stderr)
                return 1
            print('\n'.join(names))
        elif args.command == 'path':
            print(config_path(args.name))
        else:
            for name in args.names:
                print(copy_config(name, args.dest))
    except OSError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
