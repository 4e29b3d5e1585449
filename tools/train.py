"""MMDetection's `tools/train.py` with imbfocal imported; it takes exactly MMDetection's flags.

Example:
    python tools/train.py configs/retinanet/retinanet_r18_fpn_afl_12e_digits-lt.py --cfg-options ...
"""
from imbfocal.entrypoints import run_mmdet_tool

if __name__ == '__main__':
    run_mmdet_tool('train')
