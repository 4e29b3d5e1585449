# The focal loss baseline with the Adaptive Focal Loss (heatmap form);
# settings in ../_base_/losses/afl.py.
_base_ = ['./centernet_r18_focal_1x_lvis-v1.py', '../_base_/losses/afl.py']
model = dict(bbox_head=dict(loss_center_heatmap={{_base_.loss_center_heatmap}}))
