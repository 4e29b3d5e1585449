# Class-balanced focal loss (Cui et al. 2019) in its detection form: the class weights
# (mean 1 over the training instances, at most max_weight) multiply the positive term of
# the ground-truth class only, so frequent classes are not starved against background
# (weighting='row' is the paper's form). beta=0.99 and max_weight=2 are the best of the
# settings swept on digits-LT lt100's val split (docs/results/lt100_retinanet_val.md); every
# one of them stayed below focal loss there, and stronger weights (beta 0.999, max_weight 10)
# cost 30 AP. The heatmap form (CenterNet) takes the same weights: on lt100's val split with
# CenterNet they lost 2.7 AP to GaussianFocalLoss, beta 0.999 / max_weight 10 lost 20.4
# (docs/results/lt100_centernet_val.md). Use in a config as
#   _base_ = ['<baseline config>', '../_base_/losses/cb-focal.py']
#   model = dict(bbox_head=dict(loss_cls={{_base_.loss_cls}}))
# (CenterNet: loss_center_heatmap={{_base_.loss_center_heatmap}}).
# `_delete_` drops the keys of the FocalLoss it replaces; class counts come from
# the training dataset through ClassCountsHook before training starts.
loss_cls = dict(
    _delete_=True,
    type='ClassBalancedFocalLoss',
    use_sigmoid=True,
    beta=0.99,
    weighting='positive',
    max_weight=2.0,
    gamma=2.0,
    alpha=0.25,
    count_type='instances',
    loss_weight=1.0)
loss_center_heatmap = dict(
    _delete_=True,
    type='GaussianClassBalancedFocalLoss',
    beta=0.99,
    max_weight=2.0,
    alpha=2.0,
    gamma=4.0,
    count_type='instances',
    loss_weight=1.0)
custom_hooks = [dict(type='ClassCountsHook')]
