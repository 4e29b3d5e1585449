# The focal loss baseline with the Dual Focal Loss;
# settings in ../_base_/losses/dfl.py.
_base_ = ['./fcos_r50-caffe_fpn_gn-head_focal_1x_coco.py', '../_base_/losses/dfl.py']
model = dict(bbox_head=dict(loss_cls={{_base_.loss_cls}}))
