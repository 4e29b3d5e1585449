"""Loss and gradient of the focal family in one pass, from integer labels (the fast path).

Every element of class ``c`` of an anchor labelled ``y_i != c`` has ``t = 0``, so the
``(N, C)`` work is the ``t = 0`` form of the loss; the ``M <= N`` elements with ``t = 1``
(``c = y_i``) are computed apart on ``M`` gathered logits and written over their entries. With
``p = sigmoid(x)``, ``l = softplus(x)`` (the BCE for ``t = 0``) and ``alpha_n = 1 - alpha``
(1 if ``alpha < 0``)::

    L0(t=0)     = alpha_n * (p^gamma + nu) * l + beta * log(1 + p / rho)
    dL0/dx(t=0) = alpha_n * [gamma * p^gamma * (1 - p) * l + (p^gamma + nu) * p]
                  + beta * p * (1 - p) / (rho + p)

and the ``t = 1`` form is the ``t = 0`` form at ``-x`` with ``alpha`` for ``alpha_n``, no
regulariser, and the gradient's sign flipped. Then ``L = u * A_s(c * L0)`` and
``dL/dx = u * c * dL0/dx / (1 + lam_s * c * L0)`` with ``c = a_{y_i} * w_c * v_c^t`` (the
terms' ``weight_by_label``, ``class_weight`` and ``positive_weight``) and ``u`` the anchor
weight. ``l`` is computed as
``relu(x) - log(max(p, 1 - p))``: ``max(p, 1 - p) = sigmoid(|x|)`` lies in [1/2, 1], so nothing
underflows for any finite logit.

CPU: the ``(N, C)`` work runs in row chunks (:mod:`.chunks`) whose
temporaries stay in cache; only the gradient (and for ``reduction='none'`` the loss) is
written to memory. CUDA: the Triton kernel :mod:`imbfocal.kernels.focal` computes the same
per element. Either way the forward saves only ``dL/dx`` divided by the reduction's divisor,
so the backward is one multiplication by the incoming gradient, or none when that is 1
(docs/design.md has the measurements behind these choices).
"""
import dataclasses
import math
import threading
from typing import Any, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from . import chunks

_ONE = {dtype: torch.ones((), dtype=dtype) for dtype in (torch.float32, torch.float64)}
_LOG_POWER_FLOOR = {dtype: math.log(torch.finfo(dtype).tiny) / 2
                    for dtype in (torch.float32, torch.float64)}
_ZERO = {dtype: torch.zeros((), dtype=dtype) for dtype in (torch.float32, torch.float64)}


def applies(weight: Optional[Tensor], terms: Any) -> bool:
    """Whether the fast path computes a loss with these weights and terms (integer labels
    assumed): it has no gradient for the weights, so none of them may require one."""
    tensors = [weight, terms.class_weight, terms.weight_by_label, terms.positive_weight,
               terms.gamma]
    return not any(isinstance(t, Tensor) and t.requires_grad for t in tensors)


class _Forward(NamedTuple):
    loss: Tensor  # scalar sum (reduced) or (N, C)
    grad: Optional[Tensor]  # (N, C), divided by the reduction's divisor
    stats: Optional[Tensor]  # (2, C): sums of |dL/dx| over t = 1 and t = 0 elements


def _power(p: Tensor, log_p: Optional[Tensor], gamma: Union[float, Tensor],
           out: Tensor) -> Tensor:
    """``p ** gamma`` into ``out``: products for small integer ``gamma``, else ``exp(gamma log p)``.

    ``log_p`` (may be ``out`` itself) is finite for every finite logit, so ``gamma = 0`` gives 1
    even where ``p`` underflows to 0, as ``pow`` does. ``exp`` is floored at the square root
    of the smallest normal number (1e-19 in float32): below it the products that follow
    become subnormal, which x86 computes tens of times slower; such a ``p^gamma`` changes an
    element's loss by less than 1e-19 times its cross-entropy.
    """
    if _needs_log(gamma):
        return torch.mul(log_p, gamma, out=out).clamp_(min=_LOG_POWER_FLOOR[out.dtype]).exp_()
    if gamma == 0:
        return out.fill_(1)
    if gamma == 1:
        return out.copy_(p)
    torch.mul(p, p, out=out)
    for _ in range(int(gamma) - 2):
        out.mul_(p)
    return out


def _needs_log(gamma: Union[float, Tensor]) -> bool:
    return isinstance(gamma, Tensor) or gamma not in (0, 1, 2, 3, 4)


Factor = Union[float, Tensor, None]


def _scale_(tensor: Tensor, factors: Sequence[Factor]) -> Tensor:
    """``tensor *= prod(factors)`` in as few passes over ``tensor`` as the shapes allow.

    Scalars (floats, 0-d tensors), row factors ``(R, 1)`` and column factors ``(1, C)`` are
    first multiplied together among themselves (a few hundred elements at most), so a loss
    scaled by a per-anchor class weight, ``alpha``, the anchor weight and ``1 / divisor``
    costs one pass, not four. Factors of ``tensor``'s own shape are applied one by one.
    """
    scalar: Union[float, Tensor] = 1.0
    row = col = None
    full = []
    wide = tensor.dim() == 2 and tensor.size(1) != 1
    for factor in factors:
        if factor is None:
            continue
        if not isinstance(factor, Tensor) or factor.dim() == 0:
            scalar = scalar * factor
        elif wide and factor.dim() == 2 and factor.size(1) == 1:
            row = factor if row is None else row * factor
        elif wide and factor.dim() == 2 and factor.size(0) == 1 and tensor.size(0) != 1:
            col = factor if col is None else col * factor
        else:
            full.append(factor)
    small = [f for f in (row, col) if f is not None]
    unit = not isinstance(scalar, Tensor) and scalar == 1
    if small and not unit:
        small[0] = small[0] * scalar
    elif not unit:
        tensor.mul_(scalar)
    for factor in small + full:
        tensor.mul_(factor)
    return tensor


def _negative_form(x: Tensor, gamma: Union[float, Tensor], alpha: float, terms: Any,
                   beta: float, scales: Sequence[Tensor], loss: Tensor,
                   grad: Optional[Tensor], work: Sequence[Tensor],
                   loss_post: Sequence[Factor] = (), grad_post: Sequence[Factor] = ()) -> None:
    """Write ``A_s(c * L0) * prod(loss_post)`` and ``c * dL0/dx * A_s' * prod(grad_post)``.

    ``L0`` is the ``t = 0`` form of the module docstring with ``alpha`` for ``alpha_n``.
    Every constant factor (``alpha``, ``c``, ``lam_s``, the ``post`` factors) is folded into
    as few passes as possible (:func:`_scale_`).

    Args:
        x: Logits, any shape.
        gamma: Scalar or a tensor broadcastable to ``x``.
        alpha: Weight of the focal term.
        terms: Supplies ``nu``, ``rho`` and ``lam``.
        beta: Weight of the regulariser (0 for the ``t = 1`` form).
        scales: Factors of ``c``, broadcastable to ``x``.
        loss: Output of ``x``'s shape.
        grad: Output of ``x``'s shape, or None to skip the gradient.
        work: Four buffers of ``x``'s shape.
        loss_post: Factors of the loss after ``A_s`` (the anchor weight).
        grad_post: Factors of the gradient (the anchor weight, ``1 / divisor``).
    """
    p, q, l, tmp = work
    torch.sigmoid(x, out=p)
    torch.sub(_ONE[x.dtype], p, out=q)
    # log sigmoid(|x|) = log max(p, 1 - p) <= 0 (no underflow: the argument is >= 1/2);
    # l = softplus(x) = relu(x) - log sigmoid(|x|), log p = min(x, 0) + log sigmoid(|x|)
    log_sig_abs = torch.maximum(p, q, out=l).log_()
    p_gamma_out = loss if grad is None else grad
    log_p = None
    if _needs_log(gamma):
        log_p = torch.clamp(x, max=0, out=p_gamma_out).add_(log_sig_abs)
    torch.sub(torch.clamp(x, min=0, out=tmp), log_sig_abs, out=l)
    # alpha multiplies the focal term only: with a regulariser it is applied here, else
    # folded into c below
    alpha_here = alpha if beta and alpha != 1 else 1.0
    if grad is None:
        _power(p, log_p, gamma, out=loss).mul_(l)
    else:
        p_gamma = _power(p, log_p, gamma, out=grad)
        torch.mul(p_gamma, l, out=loss)
        # grad = gamma * p^gamma * l * (1 - p) + (p^gamma + nu) * p
        if terms.nu:
            grad.add_(terms.nu)
        grad.mul_(p)
        if isinstance(gamma, Tensor):
            grad.addcmul_(torch.mul(loss, gamma, out=tmp), q)
        else:
            grad.addcmul_(loss, q, value=gamma)
        if alpha_here != 1:
            grad.mul_(alpha_here)
    # loss = (p^gamma + nu) * l + beta * log1p(p / rho); it holds p^gamma * l here
    if terms.nu:
        loss.add_(l, alpha=terms.nu)
    if alpha_here != 1:
        loss.mul_(alpha_here)
    if beta:
        rho_p = torch.add(p, terms.rho, out=tmp)
        if grad is not None:
            grad.addcdiv_(torch.mul(p, q, out=q), rho_p, value=beta)
        # log1p(p / rho) = log(rho + p) - log(rho): it rounds as l does (an absolute error
        # of float eps / 2 where p is tiny) and costs one log instead of a log1p and a divide
        loss.add_(rho_p.log_(), alpha=beta)
        if terms.rho != 1:
            loss.sub_(beta * math.log(terms.rho))
    c = list(scales) + ([] if beta or alpha == 1 else [alpha])
    if terms.lam:
        # A_s(c L0) = log1p(lam c L0) / lam, A_s' = 1 / (1 + lam c L0)
        lam_loss = _scale_(loss, c + [terms.lam])
        if grad is not None:
            grad.div_(torch.add(lam_loss, 1, out=tmp))
        _scale_(lam_loss.log1p_(), list(loss_post) + [1 / terms.lam])
    else:
        _scale_(loss, c + list(loss_post))
    if grad is not None:
        _scale_(grad, c + list(grad_post))


class _Operands(NamedTuple):
    """One call's inputs in the logits' dtype, shaped for broadcasting against ``(R, C)``."""
    x: Tensor  # (N, C)
    labels: Tensor  # (N,)
    terms: Any  # gamma cast to x's dtype
    weight: Optional[Tensor]  # u: (N, 1) or (N, C)
    anchor_scale: Optional[Tensor]  # a_{y_i}: (N, 1)
    class_scale: Optional[Tensor]  # w_c: (1, C)
    inv_divisor: Union[float, Tensor]


def _operands(x: Tensor, labels: Tensor, terms: Any, weight: Optional[Tensor],
              divisor: Optional[Union[float, Tensor]]) -> _Operands:
    n, num_classes = x.shape
    if isinstance(terms.gamma, Tensor):
        terms = dataclasses.replace(terms, gamma=terms.gamma.to(x.dtype).view(1, -1))
    anchor_scale = class_scale = None
    if terms.weight_by_label is not None:
        # labels outside [0, C) are background, as in labels_to_targets
        in_range = (labels >= 0) & (labels < num_classes)
        y = torch.where(in_range, labels, labels.new_full((), num_classes))
        anchor_scale = terms.weight_by_label.to(x.dtype)[y].view(n, 1)
    if terms.class_weight is not None:
        class_scale = terms.class_weight.to(x.dtype).view(1, -1)
    weight = None if weight is None else weight.to(x.dtype)
    inv_divisor = 1.0 if divisor is None else 1 / divisor
    return _Operands(x, labels, terms, weight, anchor_scale, class_scale, inv_divisor)


class _PositiveElements(NamedTuple):
    """The ``t = 1`` elements ``(rows[k], cols[k])``, sorted by row, and their values."""
    rows: Tensor
    cols: Tensor
    loss: Tensor  # u * A_s(c * L0)
    grad: Optional[Tensor]  # u * c * dL0/dx * A_s' / divisor
    magnitude: Optional[Tensor]  # |u| * |c * dL0/dx * A_s'| (EFL statistics)


def _alphas(alpha: float) -> Tuple[float, float]:
    """``(alpha_p, alpha_n)``, the weights of ``t = 1`` and ``t = 0`` terms."""
    return (alpha, 1 - alpha) if alpha >= 0 else (1.0, 1.0)


def _at(tensor: Optional[Tensor], rows: Tensor, cols: Tensor,
        shape: torch.Size) -> Optional[Tensor]:
    """``tensor`` (broadcastable to ``shape = (N, C)``) at the elements ``(rows, cols)``."""
    return None if tensor is None else tensor.expand(shape)[rows, cols]


def _positives(ops: _Operands, need_grad: bool, need_stats: bool) -> _PositiveElements:
    """The ``M`` foreground elements: the ``t = 0`` form at ``-x``, gradient negated."""
    rows = ((ops.labels >= 0) & (ops.labels < ops.x.size(1))).nonzero().squeeze(1)
    cols = ops.labels[rows]
    x_pos = ops.x[rows, cols]
    shape = ops.x.shape
    scales = [s for s in (_at(ops.anchor_scale, rows, cols, shape),
                          _at(ops.class_scale, rows, cols, shape)) if s is not None]
    if ops.terms.positive_weight is not None:
        scales.append(ops.terms.positive_weight.to(ops.x.dtype)[cols])
    gamma = ops.terms.gamma
    gamma = _at(gamma, rows, cols, shape) if isinstance(gamma, Tensor) else gamma
    loss = torch.empty_like(x_pos)
    grad = torch.empty_like(x_pos) if need_grad or need_stats else None
    _negative_form(x_pos.neg(), gamma, _alphas(ops.terms.alpha)[0], ops.terms, 0.0, scales,
                   loss, grad, [torch.empty_like(x_pos) for _ in range(4)])
    u = _at(ops.weight, rows, cols, shape)
    magnitude = None
    if need_stats:
        magnitude = grad.clone() if u is None else grad * u.abs()
    if grad is not None:
        grad.neg_().mul_(ops.inv_divisor)
        if u is not None:
            grad.mul_(u)
    if u is not None:
        loss.mul_(u)
    return _PositiveElements(rows, cols, loss, grad if need_grad else None, magnitude)


def _rows(tensor: Optional[Tensor], r0: int, r1: int) -> Optional[Tensor]:
    return None if tensor is None else tensor[r0:r1]


def _cpu_forward(x: Tensor, labels: Tensor, terms: Any, weight: Optional[Tensor],
                   divisor: Optional[Union[float, Tensor]], need_grad: bool,
                   need_stats: bool) -> _Forward:
    """The loss (summed, or ``(N, C)`` if ``divisor`` is None), ``dL/dx / divisor``, stats.

    The ``(N, C)`` ``t = 0`` form runs chunk by chunk; in each chunk the ``t = 1`` entries are
    zeroed before the column sums (statistics) and the loss sum, and the positives' values
    are written over them at the end.
    """
    ops = _operands(x, labels, terms, weight, divisor)
    pos = _positives(ops, need_grad, need_stats)
    n, num_classes = x.shape
    rows = chunks.chunk_rows(x)
    loss_out = x.new_empty(n, num_classes) if divisor is None else None
    grad_out = x.new_empty(n, num_classes) if need_grad else None
    zero = _ZERO[x.dtype]
    local = threading.local()  # each worker's own temporaries

    def chunk(bounds: Tuple[int, int, slice]) -> Tuple[Optional[Tensor], Optional[Tensor]]:
        """The chunk's loss sum and negative statistics; its loss / gradient rows in place."""
        r0, r1, own = bounds
        if not hasattr(local, 'work'):
            local.work = [x.new_empty(rows * num_classes) for _ in
                          range(4 + (divisor is not None) + (need_stats and not need_grad))]
        buffers = [b[:(r1 - r0) * num_classes].view(r1 - r0, num_classes) for b in local.work]
        loss_c = buffers[4] if loss_out is None else loss_out[r0:r1]
        grad_c = grad_out[r0:r1] if need_grad else (buffers[-1] if need_stats else None)
        scales = [s for s in (_rows(ops.anchor_scale, r0, r1), ops.class_scale)
                  if s is not None]
        u_c = _rows(ops.weight, r0, r1)
        # EFL's statistics need c * dL0/dx * A_s' before the anchor weight and the divisor
        grad_post = [] if need_stats else [u_c, ops.inv_divisor]
        _negative_form(x[r0:r1], ops.terms.gamma, _alphas(terms.alpha)[1], ops.terms,
                       terms.beta, scales, loss_c, grad_c, buffers[:4], [u_c], grad_post)
        positives = (pos.rows[own] - r0, pos.cols[own])
        neg_stats = None
        if need_stats:
            neg_stats = _column_magnitudes(grad_c.index_put_(positives, zero), u_c)
            if need_grad:
                _scale_(grad_c, [u_c, ops.inv_divisor])
        loss_sum = None if divisor is None else loss_c.index_put_(positives, zero).sum()
        return loss_sum, neg_stats

    # summed in chunk order below, so the result does not depend on the workers' timing
    chunk_sums, chunk_stats = zip(*chunks.run_chunks(
        chunk, list(chunks.row_chunks(x, pos.rows)))) if n else ((), ())
    if need_grad:
        grad_out.index_put_((pos.rows, pos.cols), pos.grad)
    if divisor is None:
        loss = loss_out.index_put_((pos.rows, pos.cols), pos.loss)
    else:
        total = torch.stack(list(chunk_sums) + [pos.loss.sum()]).sum(dtype=torch.float64)
        loss = (total / divisor).to(x.dtype)
    stats = None
    if need_stats:
        pos_stats = x.new_zeros(num_classes).index_add_(0, pos.cols, pos.magnitude)
        neg_stats = torch.stack(chunk_stats).sum(0) if chunk_stats else x.new_zeros(num_classes)
        stats = torch.stack([pos_stats, neg_stats])
    return _Forward(loss, grad_out, stats)


def _column_magnitudes(grad: Tensor, weight: Optional[Tensor]) -> Tensor:
    """``sum_i |weight_ic| * grad_ic`` per column (``grad >= 0``: the ``t = 0`` form)."""
    if weight is None:
        return grad.sum(0)
    if weight.size(1) == 1:
        return weight.abs().view(-1) @ grad
    return (grad * weight.abs()).sum(0)


def _kernel_params(terms: Any) -> dict:
    return dict(gamma=terms.gamma, alpha=terms.alpha, nu=terms.nu, beta=terms.beta,
                rho=terms.rho, lam=terms.lam, class_weight=terms.class_weight,
                weight_by_label=terms.weight_by_label, positive_weight=terms.positive_weight)


class FocalFamilyFunction(torch.autograd.Function):
    """Autograd Function of the focal family from integer labels (module docstring).

    ``forward(ctx, pred, labels, weight, terms, divisor, need_stats, on_kernel) -> (loss,
    stats)``: ``pred`` float logits ``(N, C)``; ``labels`` int ``(N,)``, background outside
    ``[0, C)``; ``weight`` None, ``(N, 1)`` or ``(N, C)``; ``terms`` the loss's
    :class:`~imbfocal.losses.focal_family.FocalTerms`; ``divisor`` None
    (``reduction='none'``, loss ``(N, C)``) or what the sum is divided by (scalar loss);
    ``stats`` ``(2, C)``, the sums of ``|u * c * dL0/dx * A_s'|`` over the ``t = 1`` and
    ``t = 0`` elements of each class (empty unless ``need_stats``), not differentiable;
    ``on_kernel`` whether the Triton kernel computes it.

    Saved for backward: only ``dL/dx`` divided by ``divisor`` (``(N, C)``, pred's dtype). On
    the kernel path the backward scales it in place, so the graph can be back-propagated once.
    """

    @staticmethod
    def forward(ctx, pred: Tensor, labels: Tensor, weight: Optional[Tensor], terms: Any,
                divisor: Optional[Union[float, Tensor]], need_stats: bool,
                on_kernel: bool) -> Tuple[Tensor, Tensor]:
        ctx.in_place = on_kernel
        ctx.backward_done = False
        if ctx.in_place:
            from ...kernels import focal as focal_kernel
            out = focal_kernel.focal_forward(pred.detach(), labels, weight, divisor,
                                             ctx.needs_input_grad[0], need_stats,
                                             **_kernel_params(terms))
        else:
            out = _cpu_forward(pred.detach(), labels, terms, weight, divisor,
                               ctx.needs_input_grad[0], need_stats)
        ctx.save_for_backward(out.grad)
        stats = out.stats if out.stats is not None else pred.new_empty(0)
        ctx.mark_non_differentiable(stats)
        return out.loss, stats

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss: Tensor, _grad_stats: Tensor):
        (grad, ) = ctx.saved_tensors
        if ctx.in_place:
            # The saved gradient is scaled in place: no second (N, C) tensor at the peak.
            if ctx.backward_done:
                raise RuntimeError(
                    'The Triton focal-loss kernel scales its saved gradient in place, so it '
                    'can be back-propagated once; for retain_graph=True use '
                    "imbfocal.losses.fast.use_impl('torch').")
            ctx.backward_done = True
            if grad_loss.dim() == 0:
                from ...kernels import focal as focal_kernel
                return (focal_kernel.scale_gradient_(grad, grad_loss), None, None, None, None,
                        None, None)
            return grad.mul_(grad_loss), None, None, None, None, None, None
        if grad_loss.dim() == 0 and grad_loss.device.type == 'cpu' and grad_loss.item() == 1:
            grad_pred = grad
        else:
            grad_pred = grad * grad_loss
        return grad_pred, None, None, None, None, None, None
