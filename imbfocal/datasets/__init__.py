"""Datasets: the digits-LT generator and an LVIS v1 dataset that needs no ``lvis`` package."""
from .digits_lt import CLASSES as DIGITS_LT_CLASSES
from .digits_lt import PRESETS as DIGITS_LT_PRESETS
from .digits_lt import DigitsLTConfig, generate_digits_lt, is_up_to_date
from .lvis import FastLVISV1Dataset

__all__ = ['DigitsLTConfig', 'generate_digits_lt', 'is_up_to_date', 'DIGITS_LT_CLASSES',
           'DIGITS_LT_PRESETS', 'FastLVISV1Dataset']
