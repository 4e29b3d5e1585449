"""The benchmark harness beside the product: loss comparisons, run summaries and their plots,
speed benchmarks, kernel compilation, and the controls of the lt100 fair fight. Not installed
with ``pip install .``; ``tools/`` runs it from this checkout."""
