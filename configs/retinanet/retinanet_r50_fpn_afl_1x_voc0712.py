# The focal loss baseline with the Adaptive Focal Loss;
# settings in ../_base_/losses/afl.py.
_base_ = ['./retinanet_r50_fpn_focal_1x_voc0712.py', '../_base_/losses/afl.py']
model = dict(bbox_head=dict(loss_cls={{_base_.loss_cls}}))
