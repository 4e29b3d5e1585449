"""Resume MMEngine checkpoints under torch>=2.6 weights-only loading.

Since torch 2.6 ``torch.load`` defaults to ``weights_only=True``, which refuses every global a
pickle names unless it is allow-listed. MMEngine 0.10 calls ``torch.load`` without the argument,
and its checkpoints hold more than tensors: the message hub's ``HistoryBuffer`` objects, whose
state is numpy arrays of logged scalars plus the buffer's statistics methods (pickled as
``getattr(HistoryBuffer, 'mean')``). Resume then fails with "Weights only load failed".

Rather than switching weights-only loading off (which lets a checkpoint run arbitrary code),
this module allow-lists exactly what such a checkpoint names (``torch.serialization.
get_unsafe_globals_in_checkpoint`` on one, see the tests): ``HistoryBuffer``; the numpy pieces an
array or scalar pickles into (``ndarray``, ``dtype`` and the two reconstructors, under numpy 2's
``numpy._core`` name and numpy 1's ``numpy.core`` name, plus the numeric dtype classes such as
``numpy.dtypes.Float64DType``, which unpickling a dtype builds without naming them); and, in
place of ``builtins.getattr`` itself, a resolver that returns nothing but ``HistoryBuffer``'s
statistics methods.
"""
from typing import Any, Callable, List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

# HistoryBuffer registers these on first use; register_statistics can add more.
_DEFAULT_STATISTICS = frozenset({'min', 'max', 'current', 'mean'})
# Logged values are stored as arrays or scalars of these types.
_NUMERIC_SCALAR_TYPES = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                         np.uint32, np.uint64, np.float16, np.float32, np.float64)


def _history_buffer_statistic(owner: Any, name: str) -> Callable:
    """Stand-in for ``getattr`` while unpickling: only ``HistoryBuffer``'s statistics methods.

    Raises:
        pickle.UnpicklingError: For any other object or attribute.
    """
    import pickle
    statistics = _DEFAULT_STATISTICS.union(HistoryBuffer._statistics_methods)
    method = getattr(HistoryBuffer, name, None)
    if owner is not HistoryBuffer or name not in statistics or not callable(method):
        raise pickle.UnpicklingError(
            f'imbfocal allows getattr only for HistoryBuffer statistics methods while loading '
            f'a checkpoint, not {owner!r}.{name}')
    return method


def checkpoint_safe_globals() -> List[Any]:
    """The globals MMEngine checkpoints name beyond what torch allows by default.

    Returns:
        Entries for :func:`torch.serialization.add_safe_globals`: types, or ``(function,
        name)`` pairs that bind a pickled global name to the function that serves it.
    """
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    entries: List[Any] = [HistoryBuffer, np.ndarray, np.dtype,
                          (_history_buffer_statistic, 'builtins.getattr')]
    entries += [type(np.dtype(scalar_type)) for scalar_type in _NUMERIC_SCALAR_TYPES]
    for function in (multiarray._reconstruct, multiarray.scalar):
        for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
            entries.append((function, f'{module}.{function.__name__}'))
    return entries


def allow_mmengine_checkpoints() -> None:
    """Allow-list :func:`checkpoint_safe_globals` for torch's weights-only loading.

    A no-op on torch versions without ``add_safe_globals`` (before 2.4), which unpickle
    checkpoints fully anyway. Calling it more than once is harmless.
    """
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is not None:
        add_safe_globals(checkpoint_safe_globals())


allow_mmengine_checkpoints()
