"""Tiling shared by the Triton kernels: ``BLOCK_N`` rows x ``BLOCK_C`` classes per program."""
from typing import Tuple

import triton
import triton.language as tl


# Row tiles per program of the reducing kernels: per-class sums are accumulated over this
# many tiles in registers before one atomic add, so that 240,000 anchors make ~940 atomics
# per class rather than 7,500 on the same address.
ROW_TILES = 8


def block_sizes(num_rows: int, num_classes: int) -> Tuple[int, int, int, int]:
    """``(BLOCK_N, BLOCK_C, row_tiles, num_warps)``: tiles of 4096 elements, whole rows when
    ``C <= 128``, and up to ``ROW_TILES`` row tiles per program (fewer for few rows)."""
    block_c = min(triton.next_power_of_2(max(num_classes, 1)), 128)
    block_n = max(4096 // block_c, 1)
    return block_n, block_c, max(1, min(ROW_TILES, triton.cdiv(num_rows, block_n))), 8


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
