# Adaptive Focal Loss (this project's reconstruction) at its class defaults; the heatmap form
# keeps lam0 1. ClassCountsHook counts the training set. Evidence: docs/benchmark.md.
loss_cls = dict(_delete_=True, type='AdaptiveFocalLoss', use_sigmoid=True)
loss_center_heatmap = dict(_delete_=True, type='GaussianAdaptiveFocalLoss')
custom_hooks = [dict(type='ClassCountsHook')]
