# Dual Focal Loss (this project's reconstruction) at its class defaults, scaled for dense
# heads; no heatmap form. Evidence: docs/benchmark.md.
loss_cls = dict(_delete_=True, type='DualFocalLoss', use_sigmoid=True)
