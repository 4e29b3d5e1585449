"""Fast paths of the losses: one-pass loss-and-gradient Functions, chunked on CPU, Triton on
CUDA. :mod:`.dispatch` chooses the implementation (:func:`use_impl`)."""
from .chunks import chunk_workers_enabled, use_chunk_workers
from .dispatch import IMPLS, get_impl, set_impl, use_impl

__all__ = ['IMPLS', 'chunk_workers_enabled', 'get_impl', 'set_impl', 'use_chunk_workers',
           'use_impl']
