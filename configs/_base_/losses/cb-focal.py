# Class-balanced focal loss (Cui et al. 2019) in its detection form: the class weights
# (mean 1 over the training instances, at most max_weight) multiply the positive term of
# the ground-truth class only, so frequent classes are not starved against background
# (weighting='row' is the paper's form). Chosen on digits-LT lt100's val split with RetinaNet
# (docs/results/lt100_retinanet_val.md, AP / APr against focal loss): beta 0.99 with
# max_weight 1 (no class above focal loss's weight, the most frequent down to 0.5) +0.2 / +1.1;
# beta 0.95 or 0.9 with max_weight 2 -0.1 / +0.1 and -0.3 / +1.1; beta 0.99 with max_weight 2
# (the earlier default, still AFL's weights in afl.py) -3.3 / -6.3; beta 0.999 with
# max_weight 10 -31.6 / -49.1. The heatmap form (CenterNet) keeps beta 0.99 / max_weight 2:
# on lt100's val split with CenterNet it lost 2.7 AP to GaussianFocalLoss there, beta 0.999 /
# max_weight 10 lost 20.4 (docs/results/lt100_centernet_val.md). Use in a config as
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
    max_weight=1.0,
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
