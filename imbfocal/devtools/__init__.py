"""Development tools behind ``tools/``: the benchmarks' shared inputs and reports, and the
Triton kernels' ahead-of-time compilation. ``import imbfocal`` never imports this package."""
