# The focal loss baseline with the Parameter-Free loss;
# settings in ../_base_/losses/pf.py.
_base_ = ['./fcos_r50-caffe_fpn_gn-head_focal_1x_lvis-v1.py', '../_base_/losses/pf.py']
model = dict(bbox_head=dict(loss_cls={{_base_.loss_cls}}))
