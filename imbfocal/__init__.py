"""imbfocal: class-imbalance losses, heads, data and evaluation for MMDetection 3.x.

Importing the package registers everything it defines into MMDetection's registries and
allow-lists the types MMEngine checkpoints contain for torch's weights-only loading.
"""
__version__ = '0.1.0'

from . import compat  # noqa: F401,E402  (before anything loads a checkpoint)
from . import losses  # noqa: F401,E402
from . import hooks  # noqa: F401,E402
from . import models  # noqa: F401,E402
from . import datasets  # noqa: F401,E402
from . import evaluation  # noqa: F401,E402
