# The focal loss baseline with the Adaptive Focal Loss;
# settings in ../_base_/losses/afl.py.
_base_ = ['./fcos_r18_fpn_gn-head_focal_800it_digits-lt100.py', '../_base_/losses/afl.py']
model = dict(bbox_head=dict(loss_cls={{_base_.loss_cls}}))
