"""Runner hooks, registered in ``mmdet.registry.HOOKS``."""
from .class_counts_hook import ClassCountsHook
from .class_prior_hook import ClassPriorInitHook, classification_layers, frequency_prior_bias

__all__ = ['ClassCountsHook', 'ClassPriorInitHook', 'classification_layers', 'frequency_prior_bias']
