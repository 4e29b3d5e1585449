# Parameter-Free loss, detection form, at its class defaults; it needs the whole mini-batch in
# one call (RetinaAllLevelsHead for RetinaNet). Evidence: docs/benchmark.md.
loss_cls = dict(_delete_=True, type='ParameterFreeLoss', use_sigmoid=True)
loss_center_heatmap = dict(_delete_=True, type='GaussianParameterFreeLoss')
