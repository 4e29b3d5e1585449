# CenterNet R-18 trained from scratch on digits-LT (LVIS format, APr/APc/APf)
# on CPU in minutes; GaussianFocalLoss baseline, heatmap prior pi = 0.01. No
# pretrained weights (the machines have no network). Half-width ResNet-18
# (base_channels=32) and narrower deconvolutions: 2x cheaper on CPU, ample for
# 10 digit classes.
_base_ = [
    '../_base_/models/centernet_r18.py',
    '../_base_/datasets/digits_lt_lvis.py',
    '../_base_/schedules/schedule_digits_lt.py'
]
custom_imports = dict(imports=['imbfocal'], allow_failed_imports=False)

model = dict(
    backbone=dict(base_channels=32, init_cfg=None),
    neck=dict(in_channels=256, num_deconv_filters=(128, 64, 64)),
    bbox_head=dict(num_classes=10),
    test_cfg=dict(topk=100, max_per_img=100))
