"""Run MMDetection's own command-line tools with the plugin imported.

``tools/train.py`` and ``tools/test.py`` are MMDetection's entry points unchanged (same flags:
``--work-dir``, ``--resume``, ``--amp``, ``--cfg-options``, ``--launcher``...): this module
imports :mod:`imbfocal` so its registries and checkpoint allow-list are in place, then executes
the script that ships inside the installed MMDetection (``mmdet/.mim/tools/<name>.py``).
"""
import os
import os.path as osp
import runpy
import sys
from typing import List

import torch

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


def launched_by_torchrun_without_cuda(argv: List[str]) -> bool:
    """Whether this process is one of ``torchrun ... --launcher pytorch`` on a machine where
    PyTorch has no CUDA."""
    launcher = next((a.split('=', 1)[1] for a in argv if a.startswith('--launcher=')), None)
    if '--launcher' in argv and argv.index('--launcher') + 1 < len(argv):
        launcher = argv[argv.index('--launcher') + 1]
    return launcher == 'pytorch' and 'WORLD_SIZE' in os.environ and \
        not torch.cuda.is_available()


def init_cpu_process_group() -> None:
    """Join the gloo process group that ``torchrun`` set up the environment for.

    MMEngine's ``pytorch`` launcher calls ``torch.cuda.set_device`` before it initialises the
    group, which a CPU-only PyTorch cannot do; it initialises nothing when a group exists, so
    joining it here first is what a launcher would have done, with CPU's backend.
    """
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group('gloo', rank=int(os.environ['RANK']),
                                world_size=int(os.environ['WORLD_SIZE']))


def run_mmdet_tool(name: str) -> None:
    """Execute MMDetection's ``tools/<name>.py`` as ``__main__`` with the current ``sys.argv``.

    Under ``torchrun ... --launcher pytorch`` on a machine without CUDA, the process first
    joins a gloo process group (:func:`init_cpu_process_group`); the config must then wrap the
    model without device ids: ``model_wrapper_cfg=dict(type='MMDistributedDataParallel',
    device_ids=None)``.

    Raises:
        SystemExit: With the fix, when a config's ``_base_`` names ``imbfocal::`` (MMEngine
            resolves ``::`` only for the OpenMMLab packages it knows).
    """
    own_group = launched_by_torchrun_without_cuda(sys.argv)
    if own_group:
        init_cpu_process_group()
    try:
        _run_tool(name)
    finally:
        # A gloo group still open at interpreter exit can abort the process ("terminate
        # called without an active exception") after a run that finished.
        if own_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _run_tool(name: str) -> None:
    """``runpy`` of MMDetection's tool, its known misconfigurations ended in one line."""
    try:
        runpy.run_path(mmdet_tool_path(name), run_name='__main__')
    except ValueError as error:
        if 'device_ids' not in str(error) or not launched_by_torchrun_without_cuda(sys.argv):
            raise
        raise SystemExit(
            'error: on CPU, DistributedDataParallel takes no device ids: add --cfg-options '
            'model_wrapper_cfg.type=MMDistributedDataParallel model_wrapper_cfg.device_ids=None'
        ) from None
    except AssertionError as error:
        if 'does not support to load imbfocal config' not in str(error):
            raise
        raise SystemExit(
            "error: MMEngine cannot resolve _base_ = 'imbfocal::...'; copy the shipped config "
            'beside yours (python -m imbfocal.configs copy NAME --dest DIR) and name it by its '
            "relative path, or use the file `python -m imbfocal.configs path NAME` prints") \
            from None
