# Parameter-Free loss (Du et al. 2021), one-vs-all form for sigmoid heads. It
# needs the whole mini-batch in one call: RetinaNet configs use
# RetinaAllLevelsHead; FCOS and CenterNet heads already make one call. Use as
# cb-focal.py.
loss_cls = dict(
    _delete_=True,
    type='ParameterFreeLoss',
    use_sigmoid=True,
    hard_majority=False,
    loss_weight=1.0)
loss_center_heatmap = dict(
    _delete_=True, type='GaussianParameterFreeLoss', loss_weight=1.0)
