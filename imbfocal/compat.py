"""Resume MMEngine checkpoints under torch>=2.6 weights-only loading.

Since torch 2.6 ``torch.load`` defaults to ``weights_only=True``, which refuses every global a
pickle names unless it is allow-listed. MMEngine 0.10 calls ``torch.load`` without the argument,
and its checkpoints hold more than tensors: the message hub's ``HistoryBuffer`` objects (numpy
arrays of logged scalars) and the schedulers' ``collections.Counter`` milestones. Resume then
fails with "Weights only load failed ... HistoryBuffer".

Rather than switching weights-only loading off (which lets a checkpoint run arbitrary code),
this module allow-lists exactly those types: ``HistoryBuffer`` and the numpy pieces an array or
scalar pickles into (the array/scalar reconstructors, ``ndarray``, ``dtype`` and the numeric
dtype classes). numpy 2 pickles its reconstructors as ``numpy._core.multiarray.*``; checkpoints
written under numpy 1.x name them ``numpy.core.multiarray.*``, so both names are listed.
"""
import collections
from typing import Any, List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

# dtype classes of the numeric scalar types that logged values and arrays take.
_NUMERIC_SCALAR_TYPES = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                         np.uint32, np.uint64, np.float16, np.float32, np.float64)


def _numpy_multiarray():
    return np._core.multiarray if hasattr(np, '_core') else np.core.multiarray


def checkpoint_safe_globals() -> List[Any]:
    """The globals MMEngine checkpoints contain beyond what torch allows by default.

    Returns:
        Entries for :func:`torch.serialization.add_safe_globals`: types and functions, or
        ``(function, name)`` pairs where a checkpoint may spell the name differently.
    """
    multiarray = _numpy_multiarray()
    entries: List[Any] = [HistoryBuffer, collections.Counter, np.ndarray, np.dtype]
    entries += [type(np.dtype(scalar_type)) for scalar_type in _NUMERIC_SCALAR_TYPES]
    for function in (multiarray._reconstruct, multiarray.scalar):
        for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
            entries.append((function, f'{module}.{function.__name__}'))
    return entries


def allow_mmengine_checkpoints() -> None:
    """Allow-list the types of :func:`checkpoint_safe_globals` for weights-only loading.

    A no-op on torch versions without ``add_safe_globals`` (before 2.4), which load
    checkpoints with full unpickling anyway. Calling it more than once is harmless.
    """
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is not None:
        add_safe_globals(checkpoint_safe_globals())


allow_mmengine_checkpoints()
