# The focal loss baseline with the Adaptive Focal Loss;
# settings in ../_base_/losses/afl.py.
_base_ = ['./fcos_r50-caffe_fpn_gn-head_focal_1x_lvis-v1.py', '../_base_/losses/afl.py']
model = dict(bbox_head=dict(loss_cls={{_base_.loss_cls}}))
