"""Tiling shared by the Triton kernels: ``BLOCK_N`` rows x ``BLOCK_C`` classes per program."""
import contextlib
import functools
from dataclasses import dataclass
from typing import Iterator, NamedTuple, Tuple

import torch
import triton
import triton.language as tl


@dataclass(frozen=True)
class Tiling:
    """How the kernels cut the ``(N, C)`` logits into programs.

    Attributes:
        elements: Elements per tile, ``BLOCK_N * BLOCK_C`` (a power of two); a tile spans
            whole rows when ``C <= min(128, elements)``, else that many classes.
        num_warps: Warps per program; ``elements / (32 * num_warps)`` elements per thread.
        row_tiles: Row tiles per program, at most. The reducing kernels accumulate their
            per-class sums over a program's tiles in registers before one atomic add per
            class, so more row tiles mean fewer atomics on the same address; fewer mean more
            programs. :func:`launch_shape` takes the most that still leaves
            :data:`MIN_PROGRAMS_PER_SM` programs per SM.

    The default (512 x 4 x 64) and the reasons for it: docs/design.md.
    """
    elements: int = 512
    num_warps: int = 4
    row_tiles: int = 64

    def __post_init__(self):
        for name in ('elements', 'num_warps', 'row_tiles'):
            value = getattr(self, name)
            if value < 1 or value & (value - 1):
                raise ValueError(f'Tiling.{name} must be a power of two, got {value}')

    @classmethod
    def parse(cls, text: str) -> 'Tiling':
        """``'ELEMENTSxWARPS'`` or ``'ELEMENTSxWARPSxROW_TILES'``, e.g. ``'2048x4x16'``."""
        parts = text.lower().split('x')
        try:
            if len(parts) not in (2, 3):
                raise ValueError('two or three numbers')
            return cls(*(int(part) for part in parts))
        except ValueError as error:
            raise ValueError(f'A tiling is ELEMENTSxWARPS[xROW_TILES] in powers of two, e.g. '
                             f'2048x4x16; got {text!r} ({error})') from None

    def __str__(self) -> str:
        return f'{self.elements}x{self.num_warps}x{self.row_tiles}'


# Programs per SM below which a launch gives up row tiles per program: several waves of
# resident programs, so that the last wave's stragglers are a small part of the time.
MIN_PROGRAMS_PER_SM = 64
DEFAULT_TILING = Tiling()
_tiling = DEFAULT_TILING


def current_tiling() -> Tiling:
    """The tiling kernels launched now use (:data:`DEFAULT_TILING` unless :func:`use_tiling`)."""
    return _tiling


@contextlib.contextmanager
def use_tiling(tiling: Tiling) -> Iterator[None]:
    """Launch the kernels with ``tiling`` inside the block (benchmark sweeps, tests)."""
    global _tiling
    previous, _tiling = _tiling, tiling
    try:
        yield
    finally:
        _tiling = previous


@functools.lru_cache(maxsize=None)
def multiprocessor_count(device: torch.device) -> int:
    """The GPU's SM count; 0 for a CPU tensor (interpreted, or compiled only)."""
    if device.type != 'cuda':
        return 0
    return torch.cuda.get_device_properties(device).multi_processor_count


class LaunchShape(NamedTuple):
    block_n: int
    block_c: int
    row_tiles: int
    num_warps: int
    grid: Tuple[int, int]  # (row programs, column tiles)


def launch_shape(x: torch.Tensor) -> LaunchShape:
    """Blocks, row tiles per program, warps and grid of the current tiling for logits ``x``.

    A tile spans whole rows when ``C <= min(128, elements)``; a program takes as many row
    tiles as the tiling allows while the grid keeps :data:`MIN_PROGRAMS_PER_SM` programs per
    SM (on a CPU tensor, as many as the tiling allows).
    """
    num_rows, num_classes = x.shape
    tiling = current_tiling()
    block_c = min(triton.next_power_of_2(max(num_classes, 1)), 128, tiling.elements)
    block_n = max(tiling.elements // block_c, 1)
    row_tile_count = triton.cdiv(num_rows, block_n)
    column_tiles = triton.cdiv(num_classes, block_c)
    min_programs = MIN_PROGRAMS_PER_SM * multiprocessor_count(x.device)
    row_tiles = max(1, min(tiling.row_tiles, row_tile_count))
    while row_tiles > 1 and triton.cdiv(row_tile_count, row_tiles) * column_tiles < min_programs:
        row_tiles //= 2
    return LaunchShape(block_n, block_c, row_tiles, tiling.num_warps,
                       (triton.cdiv(row_tile_count, row_tiles), column_tiles))


@triton.jit
def load_tile(x_ptr, labels_ptr, row_tile, n_rows, n_cols, stride_xn, stride_xc,
              BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr):
    """Row tile ``row_tile``'s float32 logits, labels and ``t = [c == y_i]``, and bounds.

    The column tile is ``program_id(1)``. Labels outside ``[0, C)`` never equal a column:
    background (or ignored) anchors.
    """
    rows = row_tile * BLOCK_N + tl.arange(0, BLOCK_N)
    cols = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    row_in = rows < n_rows
    col_in = cols < n_cols
    inside = row_in[:, None] & col_in[None, :]
    rows64 = rows.to(tl.int64)
    x = tl.load(x_ptr + rows64[:, None] * stride_xn + cols[None, :] * stride_xc, mask=inside,
                other=0.0).to(tl.float32)
    y = tl.load(labels_ptr + rows64, mask=row_in, other=-1)
    t = cols[None, :] == y[:, None]
    return x, y, t, rows64, cols, row_in, col_in, inside


@triton.jit
def sigmoid_pair(x):
    """``(p, q, e)``: ``p = sigmoid(x)``, ``q = 1 - p`` without cancellation, and
    ``e = exp(-|x|)``, from one ``exp`` and one division."""
    e = tl.exp(-tl.abs(x))
    inv = 1.0 / (1.0 + e)
    p = tl.where(x >= 0, inv, e * inv)
    q = tl.where(x >= 0, e * inv, inv)
    return p, q, e
