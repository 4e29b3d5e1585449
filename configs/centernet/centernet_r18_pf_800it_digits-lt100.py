# The focal loss baseline with the Parameter-Free loss (heatmap form);
# settings in ../_base_/losses/pf.py.
_base_ = ['./centernet_r18_focal_800it_digits-lt100.py', '../_base_/losses/pf.py']
model = dict(bbox_head=dict(loss_center_heatmap={{_base_.loss_center_heatmap}}))
