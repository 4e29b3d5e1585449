# Class-balanced focal loss at its class defaults; ClassCountsHook counts the training set.
# Settings and their evidence: docs/benchmark.md.
loss_cls = dict(_delete_=True, type='ClassBalancedFocalLoss', use_sigmoid=True)
loss_center_heatmap = dict(_delete_=True, type='GaussianClassBalancedFocalLoss')
custom_hooks = [dict(type='ClassCountsHook')]
