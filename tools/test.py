"""MMDetection's `tools/test.py` with imbfocal imported; it takes exactly MMDetection's flags.

Example:
    python tools/test.py configs/retinanet/retinanet_r18_fpn_afl_12e_digits-lt.py \
        work_dirs/x/epoch_12.pth --cfg-options ...
"""
from imbfocal.entrypoints import run_mmdet_tool

if __name__ == '__main__':
    run_mmdet_tool('test')
