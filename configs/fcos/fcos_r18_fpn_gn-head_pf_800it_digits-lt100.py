# The focal loss baseline with the Parameter-Free loss;
# settings in ../_base_/losses/pf.py.
_base_ = ['./fcos_r18_fpn_gn-head_focal_800it_digits-lt100.py', '../_base_/losses/pf.py']
model = dict(bbox_head=dict(loss_cls={{_base_.loss_cls}}))
