"""EqualizedFocalLoss under 2-process DDP (gloo, CPU) equals one process on the global batch."""

import pytest
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import imbfocal  # noqa: F401  (registers the losses)
from imbfocal.losses.equalized_focal_loss import EqualizedFocalLoss

from ddp_harness import run_ddp  # tests/ is on pytest's pythonpath (pyproject.toml)

N, D, C, WORLD_SIZE = 16, 6, 5, 2
# float64 throughout: in float32, DDP's bucketed gradient sums round differently from the
# single process's, by more than the 1e-6 asked of the algorithm itself.
TOL = dict(rtol=1e-6, atol=1e-7)


def _global_batches():
    """Two steps of (features, labels, weight, avg_factor) for the whole (global) batch."""
    gen = torch.Generator().manual_seed(0)
    steps = []
    for step in range(2):
        features = torch.randn(N, D, generator=gen, dtype=torch.float64) * 2
        labels = torch.full((N, ), C)  # background
        weight = torch.ones(N)
        if step == 0:
            # every positive in rank 0's half: rank 1 has none, yet its G- must still count
            labels[:6] = torch.tensor([0, 1, 2, 3, 4, 0])
            weight[12] = 0  # an ignored anchor on rank 1
        else:
            labels[::3] = torch.arange(6) % C
            weight[[1, 9]] = 0
        num_pos = int((labels < C).sum())
        steps.append((features, labels, weight, float(num_pos)))
    return steps


def _train_steps(rank, world_size, steps, init, statistics):
    """Run the steps on this rank's slice of each global batch: forward, EFL, backward, SGD.

    Per-rank avg_factor = global avg_factor / world_size (MMDetection's reduce_mean of the
    positive count). Rank r's loss is sum(L_r) / (A / W), and DDP averages parameter gradients
    over the W ranks: (1/W) * sum_r W/A * d sum(L_r) = d [sum(L) / A], the single-process
    gradient of the global loss. At the logits, rank r's gradient is W times the
    single-process gradient of its slice (the 1/W comes in DDP's average).
    """
    model = nn.Linear(D, C).double()
    model.load_state_dict(init)
    if world_size > 1:
        model = DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    efl = EqualizedFocalLoss(statistics=statistics).train()  # C from the first logits
    rows = slice(rank * N // world_size, (rank + 1) * N // world_size)
    results = []
    for features, labels, weight, avg_factor in steps:
        logits = model(features[rows])
        logits.retain_grad()
        loss = efl(logits, labels[rows], weight=weight[rows], avg_factor=avg_factor / world_size)
        optimizer.zero_grad()
        loss.backward()
        results.append(dict(loss=loss.detach(), logit_grad=logits.grad,
                            weight_grad=model.module.weight.grad.clone()
                            if world_size > 1 else model.weight.grad.clone(),
                            pos_grad=efl.pos_grad.clone(), neg_grad=efl.neg_grad.clone()))
        optimizer.step()
    return results


@pytest.mark.parametrize('statistics', ['backprop', 'unnormalised'])
def test_ddp_matches_single_process_on_global_batch(statistics):
    steps = _global_batches()
    init = nn.Linear(D, C).double().state_dict()
    single = _train_steps(0, 1, steps, init, statistics)
    ranks = run_ddp(_train_steps, WORLD_SIZE, steps, init, statistics)
    # As back-propagated, a rank's gradient is W times the single process's on its slice
    # (its avg_factor is A / W), so the all-reduced statistics are W times the single
    # process's, as in the official code; their ratio g_j, all that the loss uses, is equal.
    scale = WORLD_SIZE if statistics == 'backprop' else 1
    for step, reference in enumerate(single):
        per_rank = [ranks[r][step] for r in range(WORLD_SIZE)]
        # identical statistics on every rank (all-reduced), equal to the single process's
        for key in ('pos_grad', 'neg_grad'):
            assert torch.equal(per_rank[0][key], per_rank[1][key])
            torch.testing.assert_close(per_rank[0][key], scale * reference[key], **TOL)
        # the global loss is the mean of the per-rank losses (avg_factor A / W each)
        torch.testing.assert_close(sum(r['loss'] for r in per_rank) / WORLD_SIZE,
                                   reference['loss'], **TOL)
        # logits: rank r's gradient / W is the single-process gradient of its slice
        torch.testing.assert_close(torch.cat([r['logit_grad'] for r in per_rank]) / WORLD_SIZE,
                                   reference['logit_grad'], **TOL)
        # parameters: DDP's averaged gradient is the single-process gradient
        for r in per_rank:
            torch.testing.assert_close(r['weight_grad'], reference['weight_grad'], **TOL)
    # the state moved away from the initial (focal) one, so step 2 exercised a non-trivial g
    assert (single[0]['pos_grad'] > 0).all()
