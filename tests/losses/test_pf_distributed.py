"""DDP parity of the PF losses: 2 gloo processes on halves of a batch == 1 process on all of it.

Every process computes the loss from the all-reduced (global) per-class sums, so the loss is
the same on every rank and equals the single-process loss of the concatenated batch. The
backward of ``all_reduce_sum`` sums the identical upstream gradients of the ``W`` ranks, so the
gradient w.r.t. a rank's own logits is ``W`` times the single-process gradient on that slice;
DDP then averages parameter gradients over the ranks, which gives back the single-process
gradient. The test therefore compares ``grad_rank / W`` with the single-process slice.
Everything in float64; required agreement 1e-6, checked at rtol 1e-9 / atol 1e-12.
"""

import pytest
import torch

from imbfocal.losses.parameter_free_loss import GaussianParameterFreeLoss, ParameterFreeLoss

from ddp_harness import run_ddp  # tests/ is on pytest's pythonpath (pyproject.toml)

WORLD = 2
N, C = 48, 5
B, H, W = 4, 6, 6
# (anchors on rank 0, anchors on rank 1): halves, and a rank with no anchors at all.
SPLITS = [(N // 2, N - N // 2), (N, 0)]

FORMS = {
    'pf': lambda: ParameterFreeLoss(negative='mean'),
    'pfh': lambda: ParameterFreeLoss(negative='mean', hard_majority=True),
    'softmax_pf': lambda: ParameterFreeLoss(use_sigmoid=False, negative='mean'),
    'gaussian_pf': lambda: GaussianParameterFreeLoss(negative='mean'),
    'pf_dense': lambda: ParameterFreeLoss(),
    'gaussian_pf_dense': lambda: GaussianParameterFreeLoss(),
}
# The dense forms (negative='focal') divide each rank's own negatives by the number of
# positives per rank, global count / W (no avg_factor given): each rank's loss is then
# P + W * neg_rank / n_pos, their mean the single-process loss, and grad / W the
# single-process gradient, as for the batch statistics.
DENSE = ('pf_dense', 'gaussian_pf_dense')


def _data():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(N, C + 1, generator=g, dtype=torch.float64) * 3
    labels = torch.randint(0, C + 1, (N, ), generator=g)  # C = background (sigmoid form)
    labels[torch.rand(N, generator=g) < 0.5] = C
    weight = (torch.rand(N, generator=g) > 0.2).double()  # some ignored anchors
    prob = torch.rand(B, C, H, W, generator=g, dtype=torch.float64) * 0.9 + 0.05
    heat = torch.rand(B, C, H, W, generator=g, dtype=torch.float64) * 0.95
    heat.view(-1)[torch.randperm(heat.numel(), generator=g)[:12]] = 1.0
    return logits, labels, weight, prob, heat


def _inputs(form, data, start, stop):
    """The loss inputs of a slice of the batch (anchors, or images for the heatmap)."""
    logits, labels, weight, prob, heat = data
    if form.startswith('gaussian'):
        start, stop = start * B // N, stop * B // N
        return prob[start:stop].clone().requires_grad_(), heat[start:stop], None
    x = logits[start:stop] if form == 'softmax_pf' else logits[start:stop, :C]
    return x.clone().requires_grad_(), labels[start:stop], weight[start:stop]


def _loss_and_grad(form, data, start, stop):
    pred, target, weight = _inputs(form, data, start, stop)
    loss = FORMS[form]()(pred, target, weight, avg_factor=None if form in DENSE else 3)
    (grad, ) = torch.autograd.grad(loss, pred)
    return loss.detach(), grad


def _worker(rank, world_size, data, splits):
    from imbfocal.losses.distributed import is_distributed
    assert is_distributed()
    out = {}
    for s, sizes in enumerate(splits):
        start = sum(sizes[:rank])
        for form in FORMS:
            out[form, s] = _loss_and_grad(form, data, start, start + sizes[rank])
    return out


@pytest.fixture(scope='module')
def ddp_results():
    data = _data()
    return data, run_ddp(_worker, WORLD, data, SPLITS, timeout=90)


@pytest.mark.parametrize('split', range(len(SPLITS)))
@pytest.mark.parametrize('form', FORMS)
def test_ddp_matches_single_process(ddp_results, form, split):
    data, results = ddp_results
    sizes = SPLITS[split]
    loss_single, grad_single = _loss_and_grad(form, data, 0, N)
    assert torch.isfinite(loss_single) and loss_single > 0
    start = 0
    losses = torch.stack([results[rank][form, split][0] for rank in range(WORLD)])
    if form in DENSE:
        torch.testing.assert_close(losses.mean(), loss_single, rtol=1e-9, atol=1e-12)
    else:
        torch.testing.assert_close(losses, loss_single.expand(WORLD), rtol=1e-9, atol=1e-12)
    for rank in range(WORLD):
        grad = results[rank][form, split][1]
        stop = start + sizes[rank]
        if form.startswith('gaussian'):
            expected = grad_single[start * B // N:stop * B // N]
        else:
            expected = grad_single[start:stop]
        torch.testing.assert_close(grad / WORLD, expected, rtol=1e-9, atol=1e-12)
        start = stop
