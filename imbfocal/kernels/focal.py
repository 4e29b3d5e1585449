"""Triton kernel of the element-wise sigmoid focal family: loss and ``dL/dx`` in one pass.

The maths is :mod:`imbfocal.losses.fast.focal`'s (see its docstring): every element computes the
``t = 0`` form at ``s = x`` (``t = 0``) or ``s = -x`` (``t = 1``, ``t = [c == y_i]`` from the
integer label, no one-hot), with ``p = sigmoid(s)``, ``l = softplus(s)``::

    L0      = alpha_t * (p^gamma_c + nu) * l + beta * (1 - t) * log(1 + p / rho)
    dL0/ds  = alpha_t * [gamma_c * p^gamma_c * (1 - p) * l + (p^gamma_c + nu) * p]
              + beta * (1 - t) * p * (1 - p) / (rho + p)
    L       = u * A_s(c * L0),   dL/dx = (1 - 2t) * u * c * dL0/ds / (1 + lam * c * L0)

with ``c = a_{y_i} * w_c * v_c^t`` (the per-label, per-class and positive-only class weights)
and ``u`` the anchor weight. One program owns ``ROW_TILES`` tiles of
``BLOCK_N`` rows x ``BLOCK_C`` classes: it reads the logits once and writes ``dL/dx`` (already
divided by the reduction's divisor) once, which is the whole of the memory traffic of a copy
of the logits, the bandwidth floor. The loss is written per element (``reduction='none'``) or
as one partial sum per program (summed afterwards in float64); Equalized Focal Loss's per-class
gradient statistics are column sums, accumulated over the program's tiles in registers and
then added atomically (one atomic per class and program, not per tile).

:func:`scale_gradient_` is the backward: the saved gradient is multiplied in place by the
incoming gradient, which a kernel reads from device memory and skips when it is exactly 1
(the usual case: no host synchronisation, no pass over the ``(N, C)`` tensor).
"""
import math
from typing import NamedTuple, Optional, Union

import torch
import triton
import triton.language as tl
from torch import Tensor

from .common import launch_shape, load_tile, multiprocessor_count, sigmoid_pair

# exp() is floored at the square root of float32's smallest normal number (as the CPU path)
LOG_POWER_FLOOR = tl.constexpr(math.log(torch.finfo(torch.float32).tiny) / 2)
INTEGER_GAMMAS = (0, 1, 2, 3, 4)


@triton.jit
def _log1p(z):
    """``log(1 + z)`` for ``z >= 0`` to a few ulps (Goldberg's correction of ``log(1 + z)``).

    ``u = 1 + z`` rounds, but ``u - 1`` is exact, and ``log(u) / (u - 1)`` varies slowly, so
    ``log(u) * z / (u - 1)`` is within 3e-7 of ``log1p(z)`` relatively in float32 (a series
    below 1e-4 and ``log(1 + z)`` above erred by up to 6e-4 near 1e-4). Above 1e10,
    ``log(u)`` itself is that close, and ``inf`` stays ``inf`` (``z / (u - 1)`` would be NaN).
    """
    u = 1.0 + z
    rounded = u - 1.0
    exact = rounded == 0.0  # z below half an ulp of 1: log1p(z) = z
    corrected = tl.log(u) * (z / tl.where(exact, 1.0, rounded))
    return tl.where(exact, z, tl.where(z < 1e10, corrected, tl.log(u)))


@triton.jit
def _power(p, log_p, gamma, GAMMA_INT: tl.constexpr):
    """``p ** gamma``: products for a small integer ``GAMMA_INT``, else ``exp(gamma log p)``."""
    if GAMMA_INT < 0:
        result = tl.exp(tl.maximum(gamma * log_p, LOG_POWER_FLOOR))
    else:
        result = tl.full(p.shape, 1.0, tl.float32)
        for _ in tl.static_range(GAMMA_INT):
            result = result * p
    return result


@triton.jit
def _focal_tile(x, y, t, rows64, cols, row_in, col_in, inside, weight_ptr, class_weight_ptr,
                weight_by_label_ptr, positive_weight_ptr, gamma_ptr, n_cols, stride_un,
                stride_uc, gamma, alpha_p, alpha_n, nu, beta, rho, lam,
                GAMMA_INT: tl.constexpr, GAMMA_PER_CLASS: tl.constexpr,
                HAS_WEIGHT: tl.constexpr, HAS_CLASS_WEIGHT: tl.constexpr,
                HAS_WEIGHT_BY_LABEL: tl.constexpr, HAS_POSITIVE_WEIGHT: tl.constexpr,
                HAS_NU: tl.constexpr, HAS_BETA: tl.constexpr, HAS_LAM: tl.constexpr,
                BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr):
    """A tile's ``L = u A_s(c L0)`` and ``|dL/dx| = u c dL0/ds A_s'`` (sign not applied)."""
    s = tl.where(t, -x, x)
    p, q, e = sigmoid_pair(s)
    log_sig_abs = -_log1p(e)  # log sigmoid(|s|)
    l = tl.maximum(s, 0.0) - log_sig_abs  # softplus(s), the BCE
    if GAMMA_PER_CLASS:
        g = tl.load(gamma_ptr + cols, mask=col_in, other=0.0)[None, :]
    else:
        g = gamma
    p_gamma = _power(p, tl.minimum(s, 0.0) + log_sig_abs, g, GAMMA_INT)
    alpha_t = tl.where(t, alpha_p, alpha_n)
    modulator = p_gamma
    if HAS_NU:
        modulator = p_gamma + nu
    loss = alpha_t * modulator * l
    grad = alpha_t * (g * p_gamma * q * l + modulator * p)
    if HAS_BETA:
        loss += tl.where(t, 0.0, beta * _log1p(p / rho))
        grad += tl.where(t, 0.0, beta * p * q / (rho + p))

    c = tl.full((BLOCK_N, BLOCK_C), 1.0, tl.float32)
    if HAS_CLASS_WEIGHT:
        c = c * tl.load(class_weight_ptr + cols, mask=col_in, other=0.0)[None, :]
    if HAS_WEIGHT_BY_LABEL:
        y_index = tl.where((y >= 0) & (y < n_cols), y, n_cols)
        c = c * tl.load(weight_by_label_ptr + y_index, mask=row_in, other=0.0)[:, None]
    if HAS_POSITIVE_WEIGHT:
        v = tl.load(positive_weight_ptr + cols, mask=col_in, other=0.0)[None, :]
        c = c * tl.where(t, v, 1.0)
    loss = c * loss
    grad = c * grad
    if HAS_LAM:
        lam_loss = lam * loss
        grad = grad / (1.0 + lam_loss)
        loss = _log1p(lam_loss) / lam
    if HAS_WEIGHT:
        u = tl.load(weight_ptr + rows64[:, None] * stride_un + cols[None, :] * stride_uc,
                    mask=inside, other=0.0).to(tl.float32)
        loss = loss * u
        grad = grad * u
    return loss, grad


@triton.jit
def _focal_kernel(x_ptr, labels_ptr, weight_ptr, class_weight_ptr, weight_by_label_ptr,
                  positive_weight_ptr, gamma_ptr, inv_div_ptr, grad_ptr, loss_ptr, stats_ptr,
                  n_rows, n_cols, stride_xn, stride_xc, stride_un, stride_uc,
                  gamma, alpha_p, alpha_n, nu, beta, rho, lam, inv_div,
                  GAMMA_INT: tl.constexpr, GAMMA_PER_CLASS: tl.constexpr,
                  HAS_WEIGHT: tl.constexpr, HAS_CLASS_WEIGHT: tl.constexpr,
                  HAS_WEIGHT_BY_LABEL: tl.constexpr, HAS_POSITIVE_WEIGHT: tl.constexpr,
                  HAS_NU: tl.constexpr, HAS_BETA: tl.constexpr, HAS_LAM: tl.constexpr,
                  DIV_FROM_PTR: tl.constexpr,
                  NEED_GRAD: tl.constexpr, DENSE_LOSS: tl.constexpr, NEED_STATS: tl.constexpr,
                  BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr, ROW_TILES: tl.constexpr):
    if DIV_FROM_PTR:
        scale = tl.load(inv_div_ptr)
    else:
        scale = inv_div
    loss_sum = tl.zeros((BLOCK_C, ), tl.float32)
    pos_stats = tl.zeros((BLOCK_C, ), tl.float32)
    neg_stats = tl.zeros((BLOCK_C, ), tl.float32)
    for i in range(ROW_TILES):
        x, y, t, rows64, cols, row_in, col_in, inside = load_tile(
            x_ptr, labels_ptr, tl.program_id(0) * ROW_TILES + i, n_rows, n_cols, stride_xn,
            stride_xc, BLOCK_N, BLOCK_C)
        loss, grad = _focal_tile(
            x, y, t, rows64, cols, row_in, col_in, inside, weight_ptr, class_weight_ptr,
            weight_by_label_ptr, positive_weight_ptr, gamma_ptr, n_cols, stride_un, stride_uc,
            gamma, alpha_p, alpha_n, nu, beta, rho, lam, GAMMA_INT, GAMMA_PER_CLASS, HAS_WEIGHT,
            HAS_CLASS_WEIGHT, HAS_WEIGHT_BY_LABEL, HAS_POSITIVE_WEIGHT, HAS_NU, HAS_BETA,
            HAS_LAM, BLOCK_N, BLOCK_C)
        if NEED_STATS:
            magnitude = tl.where(inside, tl.abs(grad), 0.0)
            pos_stats += tl.sum(tl.where(t, magnitude, 0.0), axis=0)
            neg_stats += tl.sum(tl.where(t, 0.0, magnitude), axis=0)
        if NEED_GRAD:
            out = tl.where(t, -grad, grad) * scale
            tl.store(grad_ptr + rows64[:, None] * n_cols + cols[None, :], out, mask=inside)
        if DENSE_LOSS:
            tl.store(loss_ptr + rows64[:, None] * n_cols + cols[None, :], loss, mask=inside)
        else:
            loss_sum += tl.sum(tl.where(inside, loss, 0.0), axis=0)
    # one atomic per class and program: ROW_TILES tiles were reduced in registers first
    cols = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    if NEED_STATS:
        tl.atomic_add(stats_ptr + cols, pos_stats, mask=cols < n_cols)
        tl.atomic_add(stats_ptr + n_cols + cols, neg_stats, mask=cols < n_cols)
    if not DENSE_LOSS:
        tl.store(loss_ptr + tl.program_id(0) * tl.num_programs(1) + tl.program_id(1),
                 tl.sum(loss_sum, axis=0))


@triton.jit
def _scale_kernel(grad_ptr, scale_ptr, numel, BLOCK: tl.constexpr):
    scale = tl.load(scale_ptr).to(tl.float32)
    if scale != 1.0:
        # a few programs per SM stride over the blocks, so that the usual early exit costs
        # a launch, not one program per block
        for block in range(tl.program_id(0), tl.cdiv(numel, BLOCK), tl.num_programs(0)):
            offsets = (tl.full((), 0, tl.int64) + block) * BLOCK + tl.arange(0, BLOCK)
            inside = offsets < numel
            values = tl.load(grad_ptr + offsets, mask=inside).to(tl.float32)
            tl.store(grad_ptr + offsets, values * scale, mask=inside)


class KernelForward(NamedTuple):
    loss: Tensor  # scalar (reduced) or (N, C)
    grad: Optional[Tensor]  # (N, C), divided by the reduction's divisor
    stats: Optional[Tensor]  # (2, C)


def focal_forward(x: Tensor,
                  labels: Tensor,
                  weight: Optional[Tensor],
                  divisor: Optional[Union[float, Tensor]],
                  need_grad: bool,
                  need_stats: bool,
                  gamma: Union[float, Tensor] = 2.0,
                  alpha: float = 0.25,
                  nu: float = 0.0,
                  beta: float = 0.0,
                  rho: float = 1.0,
                  lam: float = 0.0,
                  class_weight: Optional[Tensor] = None,
                  weight_by_label: Optional[Tensor] = None,
                  positive_weight: Optional[Tensor] = None) -> KernelForward:
    """Loss, ``dL/dx`` and gradient statistics of the focal family in one kernel launch.

    Args:
        x: Logits ``(N, C)``: float32, float16 or bfloat16 (computed in float32).
        labels: Integer labels ``(N,)``, background outside ``[0, C)``.
        weight: None, ``(N, 1)`` or ``(N, C)`` anchor weights ``u``.
        divisor: None for an ``(N, C)`` loss, else what the summed loss is divided by.
        need_grad: Whether to write ``dL/dx / divisor``.
        need_stats: Whether to return the ``(2, C)`` gradient statistics (before the divisor).
        gamma: Focusing parameter, a float or per class ``(C,)``. Defaults to 2.
        alpha: ``alpha`` of ``alpha_t``; negative disables it. Defaults to 0.25.
        nu: Constant added to the modulating factor. Defaults to 0.
        beta: Weight of the false-class regulariser. Defaults to 0.
        rho: Scale of the regulariser. Defaults to 1.
        lam: Adaptive Gradient Function strength; 0 is the identity. Defaults to 0.
        class_weight: Per-class ``w_c`` ``(C,)``, or None. Defaults to None.
        weight_by_label: ``a_y`` ``(C + 1,)`` indexed by the anchor's label (background
            last), or None. Defaults to None.
        positive_weight: Per-class ``v_c`` ``(C,)`` of the ``t = 1`` elements only, or None.
            Defaults to None.

    Returns:
        The loss, the gradient (or None) and the statistics (or None).
    """
    n, num_classes = x.shape
    device = x.device
    shape = launch_shape(x)
    grid = shape.grid
    dense = divisor is None
    # the loss is float32 for half logits too; the gradient has the logits' dtype
    loss = torch.empty((n, num_classes) if dense else (grid[0] * grid[1], ), device=device,
                       dtype=torch.float32)
    grad = x.new_empty(n, num_classes) if need_grad else None
    stats = torch.zeros(2, num_classes, device=device, dtype=torch.float32) if need_stats else None

    per_class_gamma = isinstance(gamma, Tensor)
    gamma_int = -1 if per_class_gamma or gamma not in INTEGER_GAMMAS else int(gamma)
    alpha_p, alpha_n = (alpha, 1 - alpha) if alpha >= 0 else (1.0, 1.0)
    div_from_ptr = isinstance(divisor, Tensor)
    inv_div = (1.0 / divisor).to(device=device, dtype=torch.float32) if div_from_ptr else (
        1.0 if divisor is None else 1.0 / divisor)

    def on_device(tensor: Optional[Tensor]) -> Optional[Tensor]:
        """float32 on the logits' device; contiguous, as the kernel indexes it (the weight of
        the anchors has its strides passed instead)."""
        return None if tensor is None else tensor.to(device=device,
                                                     dtype=torch.float32).contiguous()

    labels = labels.contiguous()  # read at labels_ptr + row
    weight = None if weight is None else weight.to(device=device, dtype=torch.float32)
    stride_un, stride_uc = (0, 0) if weight is None else (
        weight.stride(0), 0 if weight.size(1) == 1 else weight.stride(1))
    dummy = x  # pointer arguments that a constexpr switch leaves unread
    if n and num_classes:
        _focal_kernel[grid](
            x, labels, _or(weight, dummy), _or(on_device(class_weight), dummy),
            _or(on_device(weight_by_label), dummy), _or(on_device(positive_weight), dummy),
            _or(on_device(gamma) if per_class_gamma else None, dummy),
            inv_div if div_from_ptr else dummy, _or(grad, dummy), loss, _or(stats, dummy),
            n, num_classes, x.stride(0), x.stride(1), stride_un, stride_uc,
            0.0 if per_class_gamma else float(gamma), float(alpha_p), float(alpha_n),
            float(nu), float(beta), float(rho), float(lam),
            0.0 if div_from_ptr else float(inv_div),
            GAMMA_INT=gamma_int, GAMMA_PER_CLASS=per_class_gamma,
            HAS_WEIGHT=weight is not None, HAS_CLASS_WEIGHT=class_weight is not None,
            HAS_WEIGHT_BY_LABEL=weight_by_label is not None,
            HAS_POSITIVE_WEIGHT=positive_weight is not None, HAS_NU=bool(nu),
            HAS_BETA=bool(beta), HAS_LAM=bool(lam), DIV_FROM_PTR=div_from_ptr,
            NEED_GRAD=need_grad, DENSE_LOSS=dense, NEED_STATS=need_stats,
            BLOCK_N=shape.block_n, BLOCK_C=shape.block_c, ROW_TILES=shape.row_tiles,
            num_warps=shape.num_warps)
    elif not dense:
        loss = loss.new_zeros(1)
    if not dense:
        loss = (loss.sum(dtype=torch.float64) / divisor).float()
    return KernelForward(loss, grad, stats)


def _or(tensor: Optional[Tensor], default: Tensor) -> Tensor:
    return default if tensor is None else tensor


def scale_gradient_(grad: Tensor, scale: Tensor) -> Tensor:
    """``grad *= scale`` in place (``scale`` a one-element tensor), skipped on device if 1."""
    if grad.numel():
        block = 4096
        # four programs per SM on a GPU (two on a CPU tensor, interpreted)
        programs = min(triton.cdiv(grad.numel(), block),
                       max(4 * multiprocessor_count(grad.device), 2))
        _scale_kernel[(programs, )](grad, scale, grad.numel(), BLOCK=block, num_warps=8)
    return grad
