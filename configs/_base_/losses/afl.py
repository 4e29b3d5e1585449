# Adaptive Focal Loss (Su et al. 2025; imbfocal's reconstruction from the abstract): the
# class-balanced focal loss of cb-focal.py (same settings, same ClassCountsHook) through an
# adaptive gradient function whose damping fades out over the first agf_fraction of the
# run's iterations. Use as cb-focal.py.
_base_ = './cb-focal.py'

loss_cls = dict(type='AdaptiveFocalLoss', lam0=1.0, agf_fraction=0.5)
loss_center_heatmap = dict(
    type='GaussianAdaptiveFocalLoss', lam0=1.0, agf_fraction=0.5)
