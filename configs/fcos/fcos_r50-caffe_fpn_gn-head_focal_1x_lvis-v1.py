# FCOS R-50-caffe-FPN (GN head) on LVIS v1 (boxes only, repeat-factor
# sampling, 300 detections per image, low score threshold, APr/APc/APf) with
# FCOS's 1x schedule; focal loss baseline.
_base_ = [
    '../_base_/models/fcos_r50-caffe_fpn_gn-head.py',
    '../_base_/datasets/lvis_v1_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['imbfocal'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(num_classes=1203),
    test_cfg=dict(score_thr=0.0001, max_per_img=300))  # LVIS allows up to 300

# FCOS's schedule (MMDetection's FCOS configs)
param_scheduler = [
    dict(type='ConstantLR', factor=1.0 / 3, by_epoch=False, begin=0, end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=12,
        by_epoch=True,
        milestones=[8, 11],
        gamma=0.1)
]
optim_wrapper = dict(
    optimizer=dict(lr=0.01),
    paramwise_cfg=dict(bias_lr_mult=2., bias_decay_mult=0.),
    clip_grad=dict(max_norm=35, norm_type=2))
