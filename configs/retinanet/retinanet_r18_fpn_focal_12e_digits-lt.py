# RetinaNet R-18-FPN trained from scratch on digits-LT (LVIS format, APr/APc/APf)
# on CPU in minutes; focal loss baseline. No pretrained weights (the machines
# have no network), so BN is trained and no stage is frozen. Half-width
# ResNet-18 (base_channels=32) and 64-channel FPN/head: 3x cheaper than the
# full width on CPU, ample for 10 digit classes. Smaller anchors (16-25 px on
# P3) for the 16-48 px digits of the 128x128 images.
_base_ = [
    '../_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/digits_lt_lvis.py',
    '../_base_/schedules/schedule_digits_lt.py'
]
custom_imports = dict(imports=['imbfocal'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        depth=18,
        base_channels=32,
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=64),
    bbox_head=dict(
        num_classes=10,
        in_channels=64,
        feat_channels=64,
        anchor_generator=dict(octave_base_scale=2)),
    test_cfg=dict(score_thr=0.0001, max_per_img=100))
