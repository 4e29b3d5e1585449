# The focal loss baseline with the class-balanced focal loss;
# settings in ../_base_/losses/cb-focal.py.
_base_ = ['./retinanet_r50_fpn_focal_1x_lvis-v1.py', '../_base_/losses/cb-focal.py']
model = dict(bbox_head=dict(loss_cls={{_base_.loss_cls}}))
