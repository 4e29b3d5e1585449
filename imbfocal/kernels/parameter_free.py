"""Triton kernels of the one-vs-all PF loss's per-class sums.

The maths is :mod:`imbfocal.losses.fast.parameter_free`'s.

Forward: one reduction pass; each program reduces ``ROW_TILES`` tiles of ``BLOCK_N`` rows x
``BLOCK_C`` classes to column sums of ``w_i p_ic`` over the positives (``c = y_i``) and of
``w_i h(q_ic)`` over the negatives, in registers, then adds them atomically into ``(2, C)``.
Backward: one element-wise pass writing ``dL/dx``. Together they read the logits twice and
write the gradient once.
"""
from typing import Tuple

import torch
import triton
import triton.language as tl
from torch import Tensor

from .common import launch_shape, load_tile, sigmoid_pair


@triton.jit
def _probabilities(x_ptr, labels_ptr, w_ptr, row_tile, n_rows, n_cols, stride_xn, stride_xc,
                   BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr):
    """Row tile ``row_tile``'s ``p``, ``q = 1 - p``, positive mask ``t``, ``w`` and bounds."""
    x, y, t, rows64, cols, row_in, col_in, inside = load_tile(
        x_ptr, labels_ptr, row_tile, n_rows, n_cols, stride_xn, stride_xc, BLOCK_N, BLOCK_C)
    w = tl.load(w_ptr + rows64, mask=row_in, other=0.0)
    p, q, _ = sigmoid_pair(x)
    return p, q, t, w, rows64, cols, col_in, inside


@triton.jit
def _sums_kernel(x_ptr, labels_ptr, w_ptr, sums_ptr, n_rows, n_cols, stride_xn, stride_xc,
                 HARD: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr,
                 ROW_TILES: tl.constexpr):
    pos_num = tl.zeros((BLOCK_C, ), tl.float32)
    neg_num = tl.zeros((BLOCK_C, ), tl.float32)
    for i in range(ROW_TILES):
        p, q, t, w, rows64, cols, col_in, inside = _probabilities(
            x_ptr, labels_ptr, w_ptr, tl.program_id(0) * ROW_TILES + i, n_rows, n_cols,
            stride_xn, stride_xc, BLOCK_N, BLOCK_C)
        if HARD:
            q = tl.where(q > 0.5, 1.0, q)
        pos_num += tl.sum(tl.where(inside & t, p * w[:, None], 0.0), axis=0)
        neg_num += tl.sum(tl.where(inside & (~t), q * w[:, None], 0.0), axis=0)
    # one atomic per class and program (module docstring)
    cols = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    tl.atomic_add(sums_ptr + cols, pos_num, mask=cols < n_cols)
    tl.atomic_add(sums_ptr + n_cols + cols, neg_num, mask=cols < n_cols)


@triton.jit
def _grad_kernel(x_ptr, labels_ptr, w_ptr, grad_pos_ptr, grad_neg_ptr, grad_ptr, n_rows, n_cols,
                 stride_xn, stride_xc, HARD: tl.constexpr, BLOCK_N: tl.constexpr,
                 BLOCK_C: tl.constexpr, ROW_TILES: tl.constexpr):
    cols = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    g_pos = tl.load(grad_pos_ptr + cols, mask=cols < n_cols, other=0.0)[None, :]
    g_neg = tl.load(grad_neg_ptr + cols, mask=cols < n_cols, other=0.0)[None, :]
    for i in range(ROW_TILES):
        p, q, t, w, rows64, cols, col_in, inside = _probabilities(
            x_ptr, labels_ptr, w_ptr, tl.program_id(0) * ROW_TILES + i, n_rows, n_cols,
            stride_xn, stride_xc, BLOCK_N, BLOCK_C)
        neg_slope = -p * q
        if HARD:
            neg_slope = tl.where(q > 0.5, 0.0, neg_slope)
        grad = tl.where(t, g_pos * p * q, g_neg * neg_slope) * w[:, None]
        tl.store(grad_ptr + rows64[:, None] * n_cols + cols[None, :], grad, mask=inside)


def _launch(kernel, x: Tensor, *args, **constexprs) -> None:
    n, num_classes = x.shape
    if n and num_classes:
        shape = launch_shape(x)
        kernel[shape.grid](x, *args, n, num_classes, x.stride(0), x.stride(1), **constexprs,
                           BLOCK_N=shape.block_n, BLOCK_C=shape.block_c,
                           ROW_TILES=shape.row_tiles, num_warps=shape.num_warps)


def pf_sums(x: Tensor, labels: Tensor, w: Tensor, hard: bool) -> Tuple[Tensor, Tensor]:
    """``(pos_num, neg_num)`` of float32 logits ``x`` ``(N, C)``, weights ``w`` ``(N,)``."""
    sums = torch.zeros(2, x.size(1), device=x.device, dtype=torch.float32)
    _launch(_sums_kernel, x, labels.contiguous(), w.float().contiguous(), sums, HARD=hard)
    return sums[0], sums[1]


def pf_grad(x: Tensor, labels: Tensor, w: Tensor, hard: bool, grad_pos: Tensor,
            grad_neg: Tensor) -> Tensor:
    """``dL/dx`` ``(N, C)`` from the incoming gradients ``(C,)`` of ``pos_num`` and ``neg_num``."""
    grad = torch.empty(x.shape, device=x.device, dtype=torch.float32)
    _launch(_grad_kernel, x, labels.contiguous(), w.float().contiguous(),
            grad_pos.float().contiguous(),
            grad_neg.float().contiguous(), grad, HARD=hard)
    return grad
