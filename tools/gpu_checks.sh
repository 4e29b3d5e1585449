#!/usr/bin/env bash
# What a lent GPU checks, in one go and under 10 minutes, all numbers into OUT_DIR/gpu_checks.json:
#   1. the kernels' self-check (imbfocal.losses.fast.selfcheck) for every family and logit
#      dtype: pass or what failed, and its one-time cost;
#   2. tools/benchmark_losses.py at COCO and LVIS scale (240,000 anchors x 80 / 1203 classes):
#      the Triton kernels and the chunked PyTorch path against MMDetection's FocalLoss (mmcv
#      CUDA op), torchvision and the bandwidth floor (SPEC section 7);
#   3. the kernels under several tilings (imbfocal.kernels.common.Tiling), to check the default
#      that tools/compile_kernels.py's occupancy analysis chose;
#   4. a one-GPU training smoke test: RetinaNet R-18 + Adaptive Focal Loss on digits-LT for one
#      epoch with AMP, through tools/train.py (which path ran is in its log);
#   5. tools/benchmark_train_step.py: a RetinaNet R-50 LVIS training step with every loss against
#      MMDetection's FocalLoss;
#   6. the kernel tests on the GPU (compiled, not interpreted), as time allows.
# Needs python3 with CUDA torch, triton, mmcv (CUDA ops), mmdet and mmengine (on the lent
# machine: `source .device-kit/install.sh`, see ../shared/device-kit/README.md); imbfocal is
# taken from this checkout. Logs and the parts' JSON stay beside gpu_checks.json.
# Usage: tools/gpu_checks.sh OUT_DIR
set -uo pipefail
out=${1:?usage: tools/gpu_checks.sh OUT_DIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'" || exit 1
step() { echo "== $1 ($(date +%T))"; }

step "1. self-check"
timeout 120 python3 - "$out/selfcheck.json" <<'PY' 2>&1 | tee "$out/selfcheck.log"
import json, sys, time
import torch
import imbfocal.losses  # noqa: F401  (registers the checks)
from imbfocal.losses.fast import selfcheck
device = torch.device('cuda')
results = []
for family in ('focal', 'pf'):
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        torch.cuda.synchronize()
        tic = time.perf_counter()
        problem = selfcheck.run_check(family, device, dtype)
        torch.cuda.synchronize()
        first = time.perf_counter() - tic
        tic = time.perf_counter()
        selfcheck.run_check(family, device, dtype)
        torch.cuda.synchronize()
        results.append(dict(family=family, dtype=str(dtype)[6:], passed=problem is None,
                            problem=problem, first_seconds=round(first, 3),
                            again_seconds=round(time.perf_counter() - tic, 4)))
        print(results[-1])
json.dump(results, open(sys.argv[1], 'w'), indent=1)
PY

step "2. loss benchmark"
timeout 200 python3 tools/benchmark_losses.py --device cuda --out "$out/bench_losses.json" \
    2>&1 | tee "$out/bench_losses.md"

step "3. tilings"
timeout 120 python3 tools/benchmark_losses.py --device cuda --impls triton --repeats 11 \
    --tilings 512x4x64 256x2x64 1024x4x32 1024x8x32 2048x8x16 4096x8x8 \
    --out "$out/bench_tilings.json" 2>&1 | tee "$out/bench_tilings.md"

step "4. training smoke test"
timeout 150 bash -c "
python3 tools/make_digits_lt.py --out '$out/digits_lt' &&
python3 tools/train.py configs/retinanet/retinanet_r18_fpn_afl_12e_digits-lt.py --amp \
    --work-dir '$out/train_smoke' --cfg-options train_cfg.max_epochs=1 \
    train_dataloader.dataset.data_root='$out/digits_lt/' val_dataloader.dataset.data_root='$out/digits_lt/' \
    test_dataloader.dataset.data_root='$out/digits_lt/' val_evaluator.ann_file='$out/digits_lt/annotations/lvis_v1_val.json' \
    test_evaluator.ann_file='$out/digits_lt/annotations/lvis_v1_val.json' train_cfg.val_interval=1" \
    > "$out/train_smoke.log" 2>&1
echo "train smoke test exit $?" | tee -a "$out/train_smoke.log"

step "5. training step"
timeout 120 python3 tools/benchmark_train_step.py --device cuda --out "$out/train_step.json" \
    configs/retinanet/retinanet_r50_fpn_{focal,cb-focal,afl,dfl,efl,pf}_1x_lvis-v1.py \
    2>&1 | tee "$out/train_step.md"

step "6. kernel tests"
timeout 90 python3 -m pytest -q -x -p no:cacheprovider tests/kernels 2>&1 | tail -20 \
    | tee "$out/tests.log"

step "gpu_checks.json"
python3 - "$out" <<'PY'
import glob, json, os, re, sys
out = sys.argv[1]
def read(name):
    path = os.path.join(out, name)
    return json.load(open(path)) if os.path.isfile(path) else None
log = open(os.path.join(out, 'train_smoke.log')).read() if os.path.isfile(
    os.path.join(out, 'train_smoke.log')) else ''
smoke = dict(exit=(re.findall(r'train smoke test exit (\d+)', log) or [None])[-1],
             kernel_lines=[l for l in log.splitlines() if 'Triton kernel' in l][:6],
             last_metrics=(re.findall(r'lvis/bbox_mAP: \S+.*', log) or [None])[-1],
             seconds_per_iter=[float(t) for t in re.findall(r' time: ([\d.]+)', log)])
tests = open(os.path.join(out, 'tests.log')).read().strip().splitlines()[-1:] if \
    os.path.isfile(os.path.join(out, 'tests.log')) else []
json.dump(dict(selfcheck=read('selfcheck.json'), bench_losses=read('bench_losses.json'),
               bench_tilings=read('bench_tilings.json'), train_smoke=smoke,
               train_step=read('train_step.json'), kernel_tests=tests),
          open(os.path.join(out, 'gpu_checks.json'), 'w'), indent=1)
print('written', os.path.join(out, 'gpu_checks.json'))
PY
