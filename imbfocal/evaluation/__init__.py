"""Evaluation: long-tail (rare / common / frequent) detection metrics."""
from .frequency import LVIS_THRESHOLDS, frequency_group, resolve_frequencies
from .long_tail_metric import LongTailMetric, LongTailVOCMetric

__all__ = ['LVIS_THRESHOLDS', 'frequency_group', 'resolve_frequencies', 'LongTailMetric',
           'LongTailVOCMetric']
