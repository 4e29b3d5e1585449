# The focal loss baseline with the Parameter-Free loss;
# settings in ../_base_/losses/pf.py.
_base_ = ['./retinanet_r50_fpn_focal_1x_voc0712.py', '../_base_/losses/pf.py']
model = dict(bbox_head=dict(loss_cls={{_base_.loss_cls}}))
