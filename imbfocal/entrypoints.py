"""Run MMDetection's own command-line tools with the plugin imported.

``tools/train.py`` and ``tools/test.py`` are MMDetection's entry points unchanged (same flags:
``--work-dir``, ``--resume``, ``--amp``, ``--cfg-options``, ``--launcher``...): this module
imports :mod:`imbfocal` so its registries and checkpoint allow-list are in place, then executes
the script that ships inside the installed MMDetection (``mmdet/.mim/tools/<name>.py``).
"""
import os.path as osp
import runpy

import imbfocal  # noqa: F401  (registers the plugin before the config is built)


def mmdet_tool_path(name: str) -> str:
    """Return the path of MMDetection's ``tools/<name>.py`` inside the installed package.

    Raises:
        FileNotFoundError: If the installed MMDetection has no ``.mim/tools`` folder (a source
            checkout installed without ``mim``); the message names the fix.
    """
    import mmdet
    path = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', f'{name}.py')
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{path} not found: install MMDetection from its wheel '
            '(`pip install mmdet==3.3.0`), which ships its tools under mmdet/.mim/tools.')
    return path


def run_mmdet_tool(name: str) -> None:
    """Execute MMDetection's ``tools/<name>.py`` as ``__main__`` with the current ``sys.argv``.

    Raises:
        SystemExit: With the fix, when a config's ``_base_`` names ``imbfocal::`` (MMEngine
            resolves ``::`` only for the OpenMMLab packages it knows).
    """
    try:
        runpy.run_path(mmdet_tool_path(name), run_name='__main__')
    except AssertionError as error:
        if 'does not support to load imbfocal config' not in str(error):
            raise
        raise SystemExit(
            "error: MMEngine cannot resolve _base_ = 'imbfocal::...'; copy the shipped config "
            'beside yours (python -m imbfocal.configs copy NAME --dest DIR) and name it by its '
            "relative path, or use the file `python -m imbfocal.configs path NAME` prints") \
            from None
