#!/usr/bin/env bash
# The GPU half of the fast-loss work, measured in one go on a CUDA machine:
#   1. the kernel and loss tests on the GPU (tests/kernels compiled, not interpreted);
#   2. tools/benchmark_losses.py at COCO and LVIS scale (240,000 anchors x 80 / 1203 classes):
#      Triton kernels and the chunked PyTorch path against MMDetection's FocalLoss (mmcv CUDA
#      op), torchvision and the bandwidth floor;
#   3. the Triton kernels under several tilings (imbfocal.kernels.common.Tiling), to check
#      the default that tools/compile_kernels.py's occupancy analysis chose;
#   4. tools/benchmark_train_step.py: a whole RetinaNet R-50 LVIS training step with every
#      loss against MMDetection's FocalLoss.
# Needs python3 with CUDA torch, triton, mmcv (CUDA ops), mmdet and mmengine; imbfocal is
# taken from this checkout. Writes logs, markdown tables and JSON under OUT_DIR.
# Usage: tools/gpu_checks.sh OUT_DIR
set -euo pipefail
out=${1:?usage: tools/gpu_checks.sh OUT_DIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; \
print(torch.__version__, torch.cuda.get_device_name())"
python3 -m pytest -q -p no:cacheprovider tests/kernels tests/losses 2>&1 | tee "$out/tests.log"
python3 tools/benchmark_losses.py --device cuda --out "$out/bench_losses.json" \
    2>&1 | tee "$out/bench_losses.md"
python3 tools/benchmark_losses.py --device cuda --impls triton --repeats 21 \
    --tilings 512x4x64 256x2x64 1024x4x32 1024x8x32 2048x8x16 4096x8x8 --out "$out/bench_tilings.json" \
    2>&1 | tee "$out/bench_tilings.md"
python3 tools/benchmark_train_step.py --device cuda --out "$out/train_step.json" \
    configs/retinanet/retinanet_r50_fpn_{focal,cb-focal,afl,dfl,efl,pf}_1x_lvis-v1.py \
    2>&1 | tee "$out/train_step.md"
