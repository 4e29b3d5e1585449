"""imbfocal: class-imbalance losses, heads, data and evaluation for MMDetection 3.x.

Importing the package registers everything it defines into MMDetection's registries and
allow-lists the types MMEngine checkpoints contain for torch's weights-only loading.
"""
__version__ = '0.1.0'

from . import (
    compat,  # noqa: F401,E402  (before anything loads a checkpoint)
    datasets,  # noqa: F401,E402
    evaluation,  # noqa: F401,E402
    hooks,  # noqa: F401,E402
    losses,  # noqa: F401,E402
    models,  # noqa: F401,E402
)
