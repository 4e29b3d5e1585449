# The focal loss baseline with the Adaptive Focal Loss (heatmap form);
# settings in ../_base_/losses/afl.py.
_base_ = ['./centernet_r18_focal_800it_digits-lt100.py', '../_base_/losses/afl.py']
model = dict(bbox_head=dict(loss_center_heatmap={{_base_.loss_center_heatmap}}))
