"""How the stateful losses report their state through MMEngine while a runner trains.

Scalars (AFL's ``lam_s``, EFL's ``g_j`` summary) go to the runner's ``MessageHub`` as
``train/<name>``, so ``LoggerHook`` prints them with the losses and the visualisation backends
record them; one-off summaries (the class weights a loss starts with) go to the current
``MMLogger``. Outside a train loop nothing is recorded.
"""
from typing import Optional, Sequence, Union

import torch
from mmengine.logging import MessageHub, print_log
from torch import Tensor, nn


def training_under_runner() -> bool:
    """Whether an MMEngine train loop is running (``RuntimeInfoHook``'s ``loop_stage``)."""
    return MessageHub.get_current_instance().get_info('loop_stage') == 'train'


def log_scalars(**values: Union[float, Tensor]) -> None:
    """Record ``train/<name>`` scalars for the logger hook, inside a train loop only.

    Tensor values are copied to the host together, one device synchronisation per call.
    """
    if not training_under_runner():
        return
    tensors = [v for v in values.values() if isinstance(v, Tensor)]
    host = iter(torch.stack([t.detach().float().reshape(()) for t in tensors]).tolist()
                if tensors else [])
    hub = MessageHub.get_current_instance()
    for name, value in values.items():
        hub.update_scalar(f'train/{name}', next(host) if isinstance(value, Tensor)
                          else float(value))


def log_once(module: nn.Module, key: str, message: str) -> None:
    """Log ``message`` to the current MMLogger the first time ``key`` is logged for ``module``
    in a train loop."""
    done = module.__dict__.setdefault('_logged_once', set())
    if key in done or not training_under_runner():
        return
    done.add(key)
    print_log(message, logger='current')


def log_every(module: nn.Module, key: str, interval: int, message) -> None:
    """Log ``message()`` to the current MMLogger every ``interval`` runner iterations (from
    the first), inside a train loop only."""
    if not training_under_runner():
        return
    iteration = MessageHub.get_current_instance().get_info('iter') or 0
    if iteration % interval == 0:
        print_log(message(), logger='current')


def describe(values: Tensor, names: Optional[Sequence[str]] = None, count: int = 3) -> str:
    """``min a (class), median b, max c (class)`` and the ``count`` extremes of a per-class
    vector."""
    order = values.argsort()

    def name(index: int) -> str:
        return names[index] if names is not None else str(index)

    low = ', '.join(f'{name(i)} {values[i]:.3g}' for i in order[:count].tolist())
    high = ', '.join(f'{name(i)} {values[i]:.3g}' for i in order[-count:].flip(0).tolist())
    return f'lowest {low}; median {values.median():.3g}; highest {high}'


def log_class_weights(module: nn.Module, w_c: Tensor) -> None:
    """Log, once per run, the class weights a class-balanced loss trains with: its weighting
    (the heatmap forms have one, on the peaks, and name none), beta, the counts' source."""
    clipped = '' if getattr(module, 'max_weight', None) is None else (
        f'; {int((w_c >= module.max_weight).sum())} clipped at {module.max_weight:g}')
    setting = [f"weighting '{module.weighting}'"] if hasattr(module, 'weighting') else []
    source = module.class_counts_source
    setting += [f'beta {module.beta:g}',
                f'from {source} counts' if source else 'no counts: all equal at beta 0']
    log_once(module, 'class_weights',
             f"{type(module).__name__}: class weights w_c ({', '.join(setting)}): "
             f"{describe(w_c, getattr(module, 'class_names', None))}{clipped}")
