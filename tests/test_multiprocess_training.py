"""Two-process training on CPU, the way a user launches it: ``torchrun --nproc_per_node 2
tools/train.py CONFIG --launcher pytorch`` (gloo, MMEngine's Runner and its DDP wrapper), on a
small digits-LT build. ``tests/ddp_recorder.py`` has each rank write what it computed.

What must agree across the two ranks, iteration by iteration, is what the losses compute from
the global batch or the run: AFL's ``lam_s``, EFL's ``g_j``, PF's loss from all-reduced sums
(each rank's total loss is its own half of the batch, as MMEngine logs it). EFL's statistics
must be those of one process fed the same global batches, and a checkpoint written by rank 0
must resume on two processes and continue the same loss curve.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
ITERS_PER_EPOCH = 10  # 40 training images: 2 ranks x 2 images, or 1 process x 4 images


@pytest.fixture(scope='module')
def build(tmp_path_factory) -> str:
    """40 training images (every one has objects, so none is filtered out), 4 val images."""
    from imbfocal.datasets.digits_lt import DigitsLTConfig, generate_digits_lt
    root = str(tmp_path_factory.mktemp('digits_lt_ddp'))
    generate_digits_lt(root, DigitsLTConfig(train_images=40, val_images=4, max_class_images=16,
                                            imbalance_factor=8, val_class_images=1))
    return root


def _config(tmp_path: Path, loss: str) -> Path:
    """The shipped 12-epoch digits-LT RetinaNet config of ``loss`` with the recorder added."""
    base = ROOT / 'configs' / 'retinanet' / f'retinanet_r18_fpn_{loss}_12e_digits-lt.py'
    hooks = list(Config.fromfile(str(base)).get('custom_hooks', None) or [])
    hooks.append(dict(type='RankRecorderHook'))
    path = tmp_path / f'{loss}.py'
    path.write_text(f"_base_ = ['{base}']\n"
                    "custom_imports = dict(imports=['imbfocal', 'ddp_recorder'], "
                    "allow_failed_imports=False)\n"
                    f'custom_hooks = {hooks!r}\n')
    return path


def _options(root: str, epochs: int, batch_size: int, extra=()) -> list:
    data = root + '/'
    return ['randomness.seed=0', f'train_cfg.max_epochs={epochs}', 'train_cfg.val_interval=100',
            f'train_dataloader.batch_size={batch_size}', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
            'val_dataloader.persistent_workers=False', f'train_dataloader.dataset.data_root={data}',
            f'val_dataloader.dataset.data_root={data}', f'test_dataloader.dataset.data_root={data}',
            f'val_evaluator.ann_file={data}annotations/lvis_v1_val.json',
            f'test_evaluator.ann_file={data}annotations/lvis_v1_val.json',
            'default_hooks.checkpoint.interval=1', 'default_hooks.logger.interval=5', *extra]


def _train(config: Path, work_dir: Path, options: list, processes: int, resume: str = None):
    """``tools/train.py`` in ``processes`` processes (torchrun) or one; the ranks' records."""
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get('PYTHONPATH', '')]))
    cmd = [str(ROOT / 'tools' / 'train.py'), str(config), '--work-dir', str(work_dir)]
    if resume:
        cmd += ['--resume', resume]
    if processes > 1:
        cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
               f'--nproc_per_node={processes}', *cmd, '--launcher', 'pytorch', '--cfg-options',
               *options, 'model_wrapper_cfg.type=MMDistributedDataParallel',
               'model_wrapper_cfg.device_ids=None']
    else:
        cmd = [sys.executable, *cmd, '--cfg-options', *options]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    records = []
    for rank in range(processes):
        lines = (work_dir / f'rank{rank}.jsonl').read_text().splitlines()
        records.append([json.loads(line) for line in lines])
    return records


def _per_iteration(records: list, key: str) -> list:
    return [r[key] for r in records if key in r]


@pytest.mark.slow
def test_efl_two_processes_equal_one_process_on_the_same_global_batches(tmp_path, build):
    """The weights stay put (lr 0, BN in eval mode), so one process with batches of 4 and two
    with batches of 2 see the same logits. With ``statistics='unnormalised'`` EFL accumulates
    sum_i |dL/dx| over each rank's anchors and all-reduces the sum, so the two-process buffers
    are the one-process sums over the same 4 images per step. Not to the last bit: the float32
    logits of an image convolved in a batch of 4 and in a batch of 2 differ in their last bits
    (measured: the buffers 1.8e-5 apart, relative, after 10 steps), hence 1e-4. ``g_j`` agrees
    on both ranks at every iteration."""
    fixed = ['optim_wrapper.optimizer.lr=0.0', 'model.backbone.norm_eval=True',
             'model.bbox_head.loss_cls.statistics=unnormalised']
    config = _config(tmp_path, 'efl')
    (one, ) = _train(config, tmp_path / 'one', _options(build, 1, 4, fixed), processes=1)
    rank0, rank1 = _train(config, tmp_path / 'two', _options(build, 1, 2, fixed), processes=2)
    for key in ('train/efl_g_min', 'train/efl_g_median', 'train/efl_g_mean'):
        assert len(_per_iteration(rank0, key)) == ITERS_PER_EPOCH
        assert _per_iteration(rank0, key) == _per_iteration(rank1, key)
    single, final0, final1 = one[-1], rank0[-1], rank1[-1]
    for buffer in ('pos_grad', 'neg_grad'):
        assert final0[buffer] == final1[buffer]
        assert torch.tensor(single[buffer]).sum() > 0
        torch.testing.assert_close(torch.tensor(final0[buffer]), torch.tensor(single[buffer]),
                                   rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_pf_loss_from_all_reduced_sums_is_the_same_on_both_ranks(tmp_path, build):
    """PF's paper form is a function of the global batch's per-class sums: both ranks compute
    the same classification loss at every iteration while their box losses differ."""
    rank0, rank1 = _train(_config(tmp_path, 'pf'), tmp_path / 'pf',
                          _options(build, 1, 2, ['model.bbox_head.loss_cls.negative=mean']),
                          processes=2)
    assert len(_per_iteration(rank0, 'train/loss_cls')) == ITERS_PER_EPOCH
    assert _per_iteration(rank0, 'train/loss_cls') == _per_iteration(rank1, 'train/loss_cls')
    assert _per_iteration(rank0, 'train/loss_bbox') != _per_iteration(rank1, 'train/loss_bbox')


@pytest.mark.slow
def test_afl_schedule_counts_and_resume_on_two_processes(tmp_path, build):
    """AFL with ClassCountsHook over 2 epochs: the same lam_s and class counts on both ranks;
    then the epoch-1 checkpoint (written by rank 0) resumed on two processes gives every
    rank the same losses as the uninterrupted run for iterations 10-19."""
    config = _config(tmp_path, 'afl')
    full = _train(config, tmp_path / 'full', _options(build, 2, 2), processes=2)
    lam = [_per_iteration(records, 'train/afl_lam_s') for records in full]
    assert len(lam[0]) == 2 * ITERS_PER_EPOCH and lam[0] == lam[1]
    assert lam[0][0] > lam[0][-1] >= 0  # the damping fades (over half of 20 iterations)
    counts0, counts1 = (records[-1]['class_counts'] for records in full)
    with open(Path(build) / 'annotations' / 'lvis_v1_train.json') as f:
        expected = [c['instance_count'] for c in json.load(f)['categories']]
    assert counts0 == counts1 == expected
    assert full[0][-1]['agf_iter'] == full[1][-1]['agf_iter'] == 2 * ITERS_PER_EPOCH - 1
    checkpoint = tmp_path / 'full' / 'epoch_1.pth'
    assert checkpoint.is_file()
    resumed = _train(config, tmp_path / 'resumed', _options(build, 2, 2), processes=2,
                     resume=str(checkpoint))
    for rank in (0, 1):
        after = [r for r in full[rank] if r.get('iter', -1) >= ITERS_PER_EPOCH]
        again = [r for r in resumed[rank] if 'iter' in r]
        assert [r['iter'] for r in again] == [r['iter'] for r in after]
        for key in ('train/loss', 'train/loss_cls', 'train/afl_lam_s'):
            assert _per_iteration(again, key) == pytest.approx(_per_iteration(after, key),
                                                               rel=1e-6)
