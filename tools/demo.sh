#!/usr/bin/env bash
# The README's main job (after `make setup`): build digits-LT lt100 (100 two-digit classes,
# long-tailed train, balanced val and test), pretrain the detectors' backbone on its train
# digits (once per build), train RetinaNet R-18 with Adaptive Focal Loss on CPU for 800
# iterations, evaluate on the held-out test split, and print COCO AP and LVIS APr / APc / APf
# and where the plots are. Extra arguments go to tools/train.py (e.g. --cfg-options).
#
# Environment: CONFIG (another shipped lt100 config), WORK_DIR, SEED (training seed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py=.venv/bin/python
root=data/digits_lt100
config="${CONFIG:-configs/retinanet/retinanet_r18_fpn_afl_800it_digits-lt100.py}"
work_dir="${WORK_DIR:-work_dirs/demo_$(basename "$config" .py)}"

"$py" tools/make_digits_lt.py --preset lt100 --out "$root"
"$py" tools/pretrain_digits_backbone.py --data-root "$root"
"$py" tools/train.py "$config" --work-dir "$work_dir" \
  --cfg-options "randomness.seed=${SEED:-0}" \
  "val_dataloader.dataset.ann_file=annotations/lvis_v1_test.json" \
  "val_evaluator.ann_file=$root/annotations/lvis_v1_test.json" "$@"
"$py" - "$work_dir" "$root" "$(basename "$config" .py)" <<'PY'
import json
import os.path as osp
import sys

from lab.plots import frequency_results, plot_frequency_ap, plot_per_class_ap
from lab.runs import final_metrics, per_class_ap

work_dir, root, name = sys.argv[1:]
metrics = final_metrics(work_dir)
if metrics is None:
    sys.exit(f'no evaluation metrics found in {work_dir}')
summary = frequency_results(metrics)
with open(osp.join(root, 'annotations', 'lvis_v1_train.json'), encoding='utf-8') as f:
    train_images = {c['name']: c['image_count'] for c in json.load(f)['categories']}
bars = plot_frequency_ap({name: summary}, osp.join(work_dir, 'frequency_ap_test.png'))
points = plot_per_class_ap({name: per_class_ap(metrics)}, train_images,
                           osp.join(work_dir, 'per_class_ap_test.png'))
print('\ndigits-LT lt100 test split: ' +
      '  '.join(f'{k} {100 * v:.1f}' for k, v in summary.items()) +
      f'  (AP in points)\nplots: {bars}, {points}\nlogs and checkpoint: {work_dir}')
PY
