#!/usr/bin/env bash
# The README's main job (after `make setup`): generate digits-LT, train RetinaNet R-18 with
# Adaptive Focal Loss on CPU for 12 epochs, evaluate on the balanced val split, and print
# COCO AP and LVIS APr / APc / APf. Extra arguments go to tools/train.py (e.g. --cfg-options).
#
# Environment: CONFIG (another shipped digits-LT config), WORK_DIR, SEED (training seed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py=.venv/bin/python
config="${CONFIG:-configs/retinanet/retinanet_r18_fpn_afl_12e_digits-lt.py}"
work_dir="${WORK_DIR:-work_dirs/demo_$(basename "$config" .py)}"

"$py" tools/make_digits_lt.py --out data/digits_lt
"$py" tools/train.py "$config" --work-dir "$work_dir" \
  --cfg-options "randomness.seed=${SEED:-0}" "$@"
"$py" - "$work_dir" <<'PY'
import sys
from imbfocal.evaluation.plots import frequency_results
from imbfocal.evaluation.runs import final_metrics
metrics = final_metrics(sys.argv[1])
if metrics is None:
    sys.exit(f'no validation metrics found in {sys.argv[1]}')
summary = frequency_results(metrics)
print(f"\ndigits-LT val (epoch {metrics['step']}): " +
      '  '.join(f'{k} {100 * v:.1f}' for k, v in summary.items()) +
      f'  (AP in points; logs and checkpoints in {sys.argv[1]})')
PY
