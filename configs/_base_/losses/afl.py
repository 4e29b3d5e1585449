# Adaptive Focal Loss (Su et al. 2025; imbfocal's reconstruction from the abstract): the
# class-balanced focal loss of cb-focal.py (same ClassCountsHook) through an adaptive
# gradient function whose damping fades out over the first agf_fraction of the run's
# iterations. Its class weights keep beta=0.999 and max_weight=10, the setting measured on
# digits-LT lt100's val split (docs/results/lt100_retinanet_val.md): the damping removes most
# of what those weights cost plain CB-focal early in training. Use as cb-focal.py.
_base_ = './cb-focal.py'

loss_cls = dict(
    type='AdaptiveFocalLoss', beta=0.999, max_weight=10.0, lam0=1.0, agf_fraction=0.5)
loss_center_heatmap = dict(
    type='GaussianAdaptiveFocalLoss', lam0=1.0, agf_fraction=0.5)
