"""Registration into MMDetection's registries that survives a second import.

``import imbfocal`` registers every module of the package. A plain ``register_module()``
raises "already registered" when a module is executed twice (``importlib.reload``, a test that
clears ``sys.modules``); ``force=True`` everywhere would silently shadow an MMDetection class
of the same name. This decorator replaces only an earlier imbfocal registration.
"""
from typing import Callable, TypeVar

from mmengine.registry import Registry

T = TypeVar('T', bound=type)


def register(registry: Registry) -> Callable[[T], T]:
    """Return a class decorator that registers into ``registry`` idempotently.

    Args:
        registry: An MMDetection / MMEngine registry, e.g. ``mmdet.registry.MODELS``.

    Raises:
        KeyError: If the name is already taken by a class that imbfocal does not define.
    """

    def decorator(cls: T) -> T:
        existing = registry.module_dict.get(cls.__name__)
        if existing is not None and not existing.__module__.startswith('imbfocal'):
            raise KeyError(f'{cls.__name__} is already registered in {registry.name} by '
                           f'{existing.__module__}; imbfocal will not shadow it.')
        registry.register_module(module=cls, force=existing is not None)
        return cls

    return decorator
