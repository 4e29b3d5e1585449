"""Fast paths of the losses: one-pass loss-and-gradient Functions, chunked on CPU, Triton on
CUDA. :mod:`.dispatch` chooses the implementation (:func:`use_impl`)."""
from .dispatch import IMPLS, get_impl, use_impl

__all__ = ['IMPLS', 'get_impl', 'use_impl']
