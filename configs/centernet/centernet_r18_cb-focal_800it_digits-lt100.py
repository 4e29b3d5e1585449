# The focal loss baseline with the class-balanced focal loss (heatmap form);
# settings in ../_base_/losses/cb-focal.py.
_base_ = ['./centernet_r18_focal_800it_digits-lt100.py', '../_base_/losses/cb-focal.py']
model = dict(bbox_head=dict(loss_center_heatmap={{_base_.loss_center_heatmap}}))
