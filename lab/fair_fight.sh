#!/usr/bin/env bash
# The lt100 fair fight, as run: AFL against focal loss tuned with the same budget, the
# controls of AFL's damping, and three times the schedule (docs/benchmark.md, "The fair
# fight"). Every call is tools/compare_losses.py, which keeps finished runs, so the script
# can be stopped and started again; each run uses THREADS threads (default 2: one run at a
# time on the 2-core machine; 1 for two side by side). `lab/fair_fight.sh report` rebuilds
# the records in docs/results/ from the runs that finished (tools/compare_losses.py
# --report-only, each row over its finished seeds) and the page.
#
# Usage: lab/fair_fight.sh [run|report]   (DATA=data/digits_lt100 RUNS=work_dirs/fair)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export OMP_NUM_THREADS=${THREADS:-2} MKL_NUM_THREADS=${THREADS:-2}
py=${PYTHON:-.venv/bin/python}
data=${DATA:-data/digits_lt100}
runs=${RUNS:-work_dirs/fair}
L=model.bbox_head.loss_cls
# focal loss's schedule: warm-up (iterations), peak lr, alpha
sweep() { echo "param_scheduler.0.end=$1 optim_wrapper.optimizer.lr=$2 $L.alpha=$3"; }
T=w400-lr0.008-a0.25                 # the tuned schedule (best mean val AP over 3 seeds)
TUNED=$(sweep 400 0.008 0.25)
T4=w400-lr0.004-a0.25                # the runner-up, AFL and the damping measured on it too
RUNNER_UP=$(sweep 400 0.004 0.25)
# the afl rows are AFL with the paper's class weights (AdaptiveFocalLoss defaulted to beta
# 0.99 when they ran; its default is now 0, the damping alone: the damped rows)
AFL="$L.beta=0.99 $L.lam0"
# 3x: 2,400 iterations, the cosine decay over all of them, one validation at the end
X3="train_cfg.max_iters=2400 train_cfg.val_interval=2400 default_hooks.checkpoint.interval=2400
param_scheduler.1.end=2400 param_scheduler.1.T_max=2400"
CONTROLS=(
  "damped $L.type=DampedFocalLoss"
  "damped-pos $L.type=DampedFocalLoss $L.scope=positives"
  "damped-neg $L.type=DampedFocalLoss $L.scope=negatives"
  "damped-const $L.type=DampedFocalLoss $L.fade=False"
  "ramp $L.type=PositiveRampFocalLoss"
  "poly1 $L.type=PolyFocalLoss"
)

compare() {  # compare SPLIT WORK_DIR LOSS SEEDS TAG [--lab|--log-gradients...] -- OPTIONS...
  local split=$1 dir=$2 loss=$3 seeds=$4 tag=$5; shift 5
  local flags=()
  while [ "$#" -gt 0 ] && [ "$1" != -- ]; do flags+=("$1"); shift; done
  shift
  if [ -n "${REPORT:-}" ]; then  # the record holds the seeds whose run finished
    local finished=() seed
    for seed in $seeds; do
      [ -f "$dir/$split/${loss}_$tag/seed$seed/run_finished.json" ] && finished+=("$seed")
    done
    [ "${#finished[@]}" -eq 0 ] && return 0
    seeds="${finished[*]}"
  fi
  # shellcheck disable=SC2086
  "$py" tools/compare_losses.py --detector retinanet --split "$split" --data-root "$data" \
    --work-dir "$dir" --losses "$loss" --seeds $seeds --tag "$tag" "${flags[@]}" \
    ${REPORT:+--report-only} --cfg-options "$@"
}

fight() {
  # 1. focal loss's schedule on val, seed 0: the 3 x 3 grid; alpha 0.5 at its best (warm-up
  #    400, lr 4e-3); lr 8e-3 past its edge, then lr 1.6e-2 and warm-up 600 around that (in
  #    the loop); seeds 1 and 2 for the best two at seed 0 (warm-up 400 and 600 at lr 8e-3)
  for w in 100 200 400; do for lr in 0.001 0.002 0.004; do
    compare val "$runs" focal 0 "w$w-lr$lr-a0.25" -- $(sweep $w $lr 0.25)
  done; done
  compare val "$runs" focal 0 w400-lr0.004-a0.5 -- $(sweep 400 0.004 0.5)
  compare val "$runs" focal 0 w400-lr0.016-a0.25 -- $(sweep 400 0.016 0.25)
  for best in "400 0.008" "600 0.008"; do
    set -- $best
    compare val "$runs" focal "0 1 2" "w$1-lr$2-a0.25" -- $(sweep $1 $2 0.25)
  done
  #    (the damping on the longer warm-up too: does a longer warm-up give what it gives?)
  compare val "$runs" focal "0 1 2" w600-lr0.008-a0.25-damped --lab -- $(sweep 600 0.008 0.25) \
    $L.type=DampedFocalLoss
  compare val "$runs" afl "0 1 2" "$T4-lam4.0" -- $RUNNER_UP $AFL=4.0
  compare val "$runs" focal 0 "$T4-damped" --lab -- $RUNNER_UP $L.type=DampedFocalLoss
  # 2. on the tuned schedule, val: AFL's lam0, and the controls at seed 0
  compare val "$runs" afl "0 1 2" "$T-lam4.0" -- $TUNED $AFL=4.0
  for lam0 in 2.0 8.0; do compare val "$runs" afl 0 "$T-lam$lam0" -- $TUNED $AFL=$lam0; done
  #    (the damping alone at seeds 0-2 too: if it matches AFL on val, it is the simpler default;
  #    the damping on positives only at seeds 0-1)
  for control in "${CONTROLS[@]}"; do
    set -- $control
    local name=$1; shift
    local seeds=0
    case $name in damped) seeds="0 1 2" ;; damped-pos) seeds="0 1" ;; esac
    compare val "$runs" focal "$seeds" "$T-$name" --lab -- $TUNED "$@"
  done
  # 3. test: the tuned focal loss and AFL (their gradients logged), and the closest controls
  compare test "$runs" focal "0 1 2" "$T" --log-gradients -- $TUNED
  compare test "$runs" afl "0 1 2" "$T-lam4.0" --log-gradients -- $TUNED $AFL=4.0
  compare test "$runs" focal "0 1 2" "$T-damped" --lab -- $TUNED $L.type=DampedFocalLoss
  compare test "$runs" focal "0 1 2" "$T-ramp" --lab -- $TUNED $L.type=PositiveRampFocalLoss
  # 4. three times the schedule, test
  compare test "$runs/3x" focal "0 1 2" "$T-3x" -- $TUNED $X3
  compare test "$runs/3x" afl "0 1 2" "$T-lam4.0-3x" -- $TUNED $AFL=4.0 $X3
}

case "${1:-run}" in
  run) fight ;;
  report)
    # the records start empty, so a row the script no longer lists cannot linger in them
    rm -f "$runs/results_val.json" "$runs/results_test.json" "$runs/3x/results_test.json"
    REPORT=1 fight
    # a split none of whose runs finished has no record
    for pair in "results_val val" "results_test test" "3x/results_test 3x_test"; do
      set -- $pair
      [ -f "$runs/$1.json" ] && cp "$runs/$1.json" "docs/results/lt100_fair_retinanet_$2.json"
    done
    for row in "focal_$T" "afl_$T-lam4.0"; do
      log="$runs/test/$row/seed0/gradient_groups.jsonl"
      [ -f "$log" ] && mkdir -p docs/results/mechanism &&
        cp "$log" "docs/results/mechanism/${row}_seed0.jsonl"
    done
    "$py" tools/benchmark_page.py ;;
  *) echo "usage: lab/fair_fight.sh [run|report]" >&2; exit 2 ;;
esac
