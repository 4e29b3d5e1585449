"""Runner hooks, registered in ``mmdet.registry.HOOKS``."""
from .class_counts_hook import ClassCountsHook

__all__ = ['ClassCountsHook']
