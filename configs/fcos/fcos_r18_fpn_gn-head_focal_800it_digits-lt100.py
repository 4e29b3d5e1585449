# FCOS R-18-FPN (GN head) on digits-LT lt100 (100 classes, LVIS format, APr/APc/APf) on
# CPU; MMDetection's FocalLoss baseline. The backbone is the half-width ResNet-18 pretrained
# on the train split's single digits (tools/pretrain_digits_backbone.py). P3-P5 only (the
# objects are 14-38 px): P3 takes objects whose farthest side is up to 16 px from a
# location, P4 up to 32, P5 the rest. The head takes MMDetection's FCOS improvements
# (centre sampling, box targets normalised by the stride, centre-ness on the regression
# branch, GIoU) with a centre radius of half a stride: the one location of a level nearest
# the object's centre. Chosen on lt100's val split (docs/results/lt100_fcos_val.md, focal loss,
# seed 0): AP 25.4 as MMDetection's FCOS, 28.4 with the improvements at radius 1.5, 32.8 at
# 0.75, 46.1 at 0.5. Our reading: an off-centre location sees one digit of a two-digit class
# more than the other, so its positive label teaches the classifier a confusable class.
_base_ = [
    '../_base_/models/fcos_r50-caffe_fpn_gn-head.py',
    '../_base_/datasets/digits_lt100_lvis.py',
    '../_base_/schedules/schedule_digits_lt100.py'
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
        init_cfg=dict(
            type='Pretrained',
            checkpoint='data/digits_lt100/pretrained/resnet18_w32_digits.pth')),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=64, num_outs=3),
    bbox_head=dict(
        num_classes=100,
        in_channels=64,
        feat_channels=64,
        strides=[8, 16, 32],
        regress_ranges=((-1, 16), (16, 32), (32, 1e8)),
        norm_on_bbox=True,
        centerness_on_reg=True,
        center_sampling=True,
        center_sample_radius=0.5,
        loss_bbox=dict(type='GIoULoss', loss_weight=1.0),
        norm_cfg=dict(type='GN', num_groups=16, requires_grad=True)),
    test_cfg=dict(score_thr=0.0001, max_per_img=100))
train_dataloader = dict(batch_size=16)
