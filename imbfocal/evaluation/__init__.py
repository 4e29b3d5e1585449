"""Evaluation: long-tail (rare / common / frequent) detection metrics and plots."""
from .frequency import LVIS_THRESHOLDS, frequency_group, resolve_frequencies
from .long_tail_metric import LongTailMetric, LongTailVOCMetric
from .plots import plot_frequency_ap

__all__ = ['LVIS_THRESHOLDS', 'frequency_group', 'resolve_frequencies', 'LongTailMetric',
           'LongTailVOCMetric', 'plot_frequency_ap']
