# Equalized Focal Loss (Li et al. CVPR 2022). Its per-class gradient statistics
# need the whole mini-batch in one call (RetinaAllLevelsHead for RetinaNet).
# Use as cb-focal.py (no heatmap form for CenterNet).
loss_cls = dict(
    _delete_=True,
    type='EqualizedFocalLoss',
    use_sigmoid=True,
    gamma_b=2.0,
    s=8.0,
    alpha=0.25,
    loss_weight=1.0)
