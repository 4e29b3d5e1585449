# Adaptive Focal Loss (Su et al. 2025; imbfocal's reconstruction from the
# abstract): the class-balanced focal loss of cb-focal.py (same settings, same
# ClassCountsHook) through an adaptive gradient function that fades out over
# the first agf_iters iterations. Use as cb-focal.py.
_base_ = './cb-focal.py'

loss_cls = dict(type='AdaptiveFocalLoss', lam0=1.0, agf_iters=1000)
loss_center_heatmap = dict(
    type='GaussianAdaptiveFocalLoss', lam0=1.0, agf_iters=1000)
