# Dual Focal Loss (Hossain et al.; imbfocal's reconstruction from the abstract).
# Use as cb-focal.py (no heatmap form for CenterNet).
loss_cls = dict(
    _delete_=True,
    type='DualFocalLoss',
    use_sigmoid=True,
    gamma=2.0,
    nu=0.1,
    beta=1.0,
    rho=1.0,
    loss_weight=1.0)
