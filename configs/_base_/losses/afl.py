# Adaptive Focal Loss (this project's reconstruction) at its class defaults: the damping
# alone (beta 0) for RetinaNet and FCOS, class weights (beta 0.99) and lam0 1 for the heatmap
# form. ClassCountsHook counts the training set for the heatmap form's weights, and for
# `loss_cls.beta=0.99` given as an option. Evidence: docs/benchmark.md.
loss_cls = dict(_delete_=True, type='AdaptiveFocalLoss', use_sigmoid=True)
loss_center_heatmap = dict(_delete_=True, type='GaussianAdaptiveFocalLoss')
custom_hooks = [dict(type='ClassCountsHook')]
