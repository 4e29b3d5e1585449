# RetinaNet R-18-FPN on digits-LT lt100 (100 classes, LVIS format, APr/APc/APf) on CPU;
# MMDetection's FocalLoss, the baseline of the benchmark. The backbone is the half-width
# ResNet-18 pretrained on the train split's single digits
# (tools/pretrain_digits_backbone.py), as LVIS detectors start from ImageNet weights. The
# head has GroupNorm (as FCOS's, and the RetinaNet-style baseline of the EFL paper): without
# it the classifier of 100 classes had barely started after 756 iterations (val AP 0.4
# against 63). P3-P5 only (the objects are 14-38 px), one anchor shape (the two-digit
# numbers are about as wide as they are tall) at three scales per level.
_base_ = [
    '../_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/digits_lt100_lvis.py',
    '../_base_/schedules/schedule_digits_lt100.py'
]
custom_imports = dict(imports=['imbfocal'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        depth=18,
        base_channels=32,
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='data/digits_lt100/pretrained/resnet18_w32_digits.pth')),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=64, num_outs=3),
    bbox_head=dict(
        num_classes=100,
        in_channels=64,
        feat_channels=64,
        norm_cfg=dict(type='GN', num_groups=16, requires_grad=True),
        anchor_generator=dict(
            octave_base_scale=2, ratios=[1.0], strides=[8, 16, 32])),
    test_cfg=dict(score_thr=0.0001, max_per_img=100))
train_dataloader = dict(batch_size=16)
# The schedule tuned for focal loss on lt100's val split (warm-up 400 iterations, peak lr
# 8e-3; docs/benchmark.md), which every RetinaNet lt100 config inherits.
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=400),
    dict(
        type='CosineAnnealingLR',
        eta_min_ratio=0.01,
        begin=0,
        end=800,
        T_max=800,
        by_epoch=False)
]
optim_wrapper = dict(optimizer=dict(lr=0.008))
