# FCOS R-18-FPN (GN head) trained from scratch on digits-LT (LVIS format,
# APr/APc/APf) on CPU in minutes; focal loss baseline. No pretrained weights
# (the machines have no network): pytorch-style ResNet, BN trained, no stage
# frozen. Half-width ResNet-18 (base_channels=32) and 64-channel FPN/head: 3x
# cheaper than the full width on CPU, ample for 10 digit classes.
_base_ = [
    '../_base_/models/fcos_r50-caffe_fpn_gn-head.py',
    '../_base_/datasets/digits_lt_lvis.py',
    '../_base_/schedules/schedule_digits_lt.py'
]
custom_imports = dict(imports=['imbfocal'], allow_failed_imports=False)

model = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        depth=18,
        base_channels=32,
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=64),
    bbox_head=dict(num_classes=10, in_channels=64, feat_channels=64),
    test_cfg=dict(score_thr=0.0001, max_per_img=100))
optim_wrapper = dict(paramwise_cfg=dict(bias_lr_mult=2., bias_decay_mult=0.))
