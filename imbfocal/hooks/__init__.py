"""Runner hooks, registered in ``mmdet.registry.HOOKS``."""
from .class_counts_hook import ClassCountsHook
from .class_prior_hook import ClassPriorInitHook, frequency_prior_bias

__all__ = ['ClassCountsHook', 'ClassPriorInitHook', 'frequency_prior_bias']
