"""Tiling shared by the Triton kernels: ``BLOCK_N`` rows x ``BLOCK_C`` classes per program."""
from typing import Tuple

import triton
import triton.language as tl


def block_sizes(num_classes: int) -> Tuple[int, int, int]:
    """``(BLOCK_N, BLOCK_C, num_warps)``: tiles of 4096 elements, whole rows when C <= 128."""
    block_c = min(triton.next_power_of_2(max(num_classes, 1)), 128)
    return max(4096 // block_c, 1), block_c, 8


@triton.jit
def load_tile(x_ptr, labels_ptr, n_rows, n_cols, stride_xn, stride_xc, BLOCK_N: tl.constexpr,
              BLOCK_C: tl.constexpr):
    """The program's tile of float32 logits, its labels and ``t = [c == y_i]``, and bounds.

    Labels outside ``[0, C)`` never equal a column: background (or ignored) anchors.
    """
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
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
