"""The per-class sums of the one-vs-all PF loss from integer labels, as one autograd Function.

:mod:`imbfocal.losses.parameter_free_loss` computes PF from four per-class sums over the
anchors (weights ``w_i``, labels ``y_i``, ``p = sigmoid(x)``, ``q = 1 - p = sigmoid(-x)``,
``h`` the identity, or PFH's ``h(q) = 1 if q > 0.5 else q``)::

    pos_num_c = sum_{y_i = c} w_i p_ic          pos_cnt_c = sum_{y_i = c} w_i
    neg_num_c = sum_{y_i != c} w_i h(q_ic)      neg_cnt_c = sum_i w_i - pos_cnt_c

Only ``pos_num`` and ``neg_num`` depend on the logits, and their gradient is element-wise::

    d pos_num_c / d x_ic = w_i p q   (y_i = c)
    d neg_num_c / d x_ic = -w_i p q  (y_i != c; 0 where PFH made q > 0.5 a constant)

so the forward is one reduction pass over the logits (no ``(N, C)`` tensor is written or
saved: the backward reads the logits again), and the backward one element-wise pass that
writes ``dL/dx = g_pos[c] * ... or g_neg[c] * ...`` from the incoming per-class gradients.
The log terms, the mean over classes and the distributed all-reduce stay in autograd on
``(C,)`` tensors. CPU: row chunks with cache-resident temporaries
(:mod:`.chunks`); CUDA: the Triton kernels of
:mod:`imbfocal.kernels.parameter_free`.
"""
import threading
from typing import Optional, Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from . import chunks


class _ForegroundAnchors:
    """The foreground anchors: row indices, their class, weight and own-class ``p q``."""

    def __init__(self, x: Tensor, labels: Tensor, w: Tensor) -> None:
        num_classes = x.size(1)
        fg = (labels >= 0) & (labels < num_classes)
        self.rows = fg.nonzero().squeeze(1)
        self.cols = labels[self.rows]
        self.weight = w[self.rows]
        self.prob = x[self.rows, self.cols].sigmoid()


def _hard_(q: Tensor) -> Tensor:
    """PFH in place: a negative probability above 0.5 becomes the constant 1."""
    return q.masked_fill_(q > 0.5, 1)


def _sums_torch(x: Tensor, labels: Tensor, w: Tensor, hard: bool) -> Tuple[Tensor, Tensor]:
    """``(pos_num, neg_num)`` on the CPU path, the ``(N, C)`` work in row chunks."""
    num_classes = x.size(1)
    pos = _ForegroundAnchors(x, labels, w)
    pos_num = x.new_zeros(num_classes).index_add_(0, pos.cols, pos.weight * pos.prob)
    rows = chunks.chunk_rows(x)
    zero = x.new_zeros(())
    local = threading.local()  # each worker's own buffer

    def chunk(bounds: Tuple[int, int, slice]) -> Tensor:
        r0, r1, own = bounds
        if not hasattr(local, 'buffer'):
            local.buffer = x.new_empty(rows * num_classes)
        q = torch.neg(x[r0:r1], out=local.buffer[:(r1 - r0) * num_classes].view(r1 - r0, -1))
        q.sigmoid_()
        if hard:
            _hard_(q)
        q.index_put_((pos.rows[own] - r0, pos.cols[own]), zero)
        return q.t() @ w[r0:r1]

    sums = chunks.run_chunks(chunk, list(chunks.row_chunks(x, pos.rows)))
    neg_num = torch.stack(sums).sum(0) if sums else x.new_zeros(num_classes)
    return pos_num, neg_num


def _grad_torch(x: Tensor, labels: Tensor, w: Tensor, hard: bool, grad_pos: Tensor,
                grad_neg: Tensor) -> Tensor:
    """``dL/dx`` on the CPU path from the incoming gradients of ``pos_num`` and ``neg_num``."""
    n, num_classes = x.shape
    grad = torch.empty_like(x)
    rows = chunks.chunk_rows(x)
    neg_scale = grad_neg.neg().view(1, -1)
    local = threading.local()  # each worker's own buffer

    def chunk(r0: int) -> None:
        r1 = min(r0 + rows, n)
        if not hasattr(local, 'buffer'):
            local.buffer = x.new_empty(rows * num_classes)
        p = torch.sigmoid(x[r0:r1], out=grad[r0:r1])
        # q = sigmoid(-x), not 1 - p: p rounds to 1 for x > 17 in float32, q does not
        q = torch.neg(x[r0:r1], out=local.buffer[:(r1 - r0) * num_classes].view(r1 - r0, -1))
        p.mul_(q.sigmoid_())
        if hard:
            p.masked_fill_(q > 0.5, 0)
        p.mul_(neg_scale).mul_(w[r0:r1].view(-1, 1))

    chunks.run_chunks(chunk, list(range(0, n, rows)))
    pos = _ForegroundAnchors(x, labels, w)
    pos_slope = pos.prob * x[pos.rows, pos.cols].neg().sigmoid()
    grad[pos.rows, pos.cols] = grad_pos[pos.cols] * pos.weight * pos_slope
    return grad


class ParameterFreeSums(torch.autograd.Function):
    """``(pos_num, neg_num)`` ``(C,)`` each, differentiable in the logits (module docstring).

    ``forward(ctx, x, labels, w, hard, on_kernel)``: ``x`` logits ``(N, C)``, ``labels``
    ``(N,)`` (outside ``[0, C)``: background), ``w`` weights ``(N,)``, ``hard`` PFH,
    ``on_kernel`` whether the Triton kernels compute it. Saves ``x``, ``labels`` and ``w``
    (inputs, no new memory).
    """

    @staticmethod
    def forward(ctx, x: Tensor, labels: Tensor, w: Tensor, hard: bool,
                on_kernel: bool) -> Tuple[Tensor, Tensor]:
        ctx.kernel = on_kernel
        ctx.hard = hard
        ctx.save_for_backward(x, labels, w)
        if ctx.kernel:
            from ...kernels import parameter_free as pf_kernel
            return pf_kernel.pf_sums(x.detach(), labels, w, hard)
        return _sums_torch(x.detach(), labels, w, hard)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_pos: Tensor, grad_neg: Tensor):
        x, labels, w = ctx.saved_tensors
        if ctx.kernel:
            from ...kernels import parameter_free as pf_kernel
            grad = pf_kernel.pf_grad(x, labels, w, ctx.hard, grad_pos, grad_neg)
        else:
            grad = _grad_torch(x, labels, w, ctx.hard, grad_pos, grad_neg)
        return grad, None, None, None, None


def label_sums(x: Tensor, labels: Tensor, w: Optional[Tensor], hard: bool,
               on_kernel: bool) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(pos_num, pos_cnt, neg_num, neg_cnt)`` ``(C,)`` each from integer labels.

    Args:
        x: Logits ``(N, C)``, float32 or float64 (float32 on the kernels).
        labels: Integer labels ``(N,)``, background outside ``[0, C)``.
        w: Non-negative weights ``(N,)`` or ``(N, 1)`` not requiring grad, or None (ones).
        hard: PFH (``h(q) = 1`` for ``q > 0.5``).
        on_kernel: Whether the Triton kernels compute the sums.
    """
    n, num_classes = x.shape
    w = x.new_ones(n) if w is None else w.reshape(n).to(x.dtype).contiguous()
    fg = (labels >= 0) & (labels < num_classes)
    fg_w = w * fg.to(x.dtype)
    pos_cnt = x.new_zeros(num_classes).index_add_(0, labels.clamp(0, max(num_classes - 1, 0)),
                                                  fg_w)
    neg_cnt = (w.sum() - pos_cnt).clamp(min=0)
    pos_num, neg_num = ParameterFreeSums.apply(x, labels, w, hard, on_kernel)
    return pos_num, pos_cnt, neg_num, neg_cnt
