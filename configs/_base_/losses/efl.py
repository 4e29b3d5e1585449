# Equalized Focal Loss at its class defaults; it needs the whole mini-batch in one call
# (RetinaAllLevelsHead for RetinaNet). No heatmap form. Evidence: docs/benchmark.md.
loss_cls = dict(_delete_=True, type='EqualizedFocalLoss', use_sigmoid=True)
