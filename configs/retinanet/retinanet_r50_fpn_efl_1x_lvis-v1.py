# The focal loss baseline with the Equalized Focal Loss;
# settings in ../_base_/losses/efl.py.
_base_ = ['./retinanet_r50_fpn_focal_1x_lvis-v1.py', '../_base_/losses/efl.py']
model = dict(bbox_head=dict(loss_cls={{_base_.loss_cls}}))
