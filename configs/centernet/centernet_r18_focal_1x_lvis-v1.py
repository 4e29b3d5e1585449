# CenterNet R-18 on LVIS v1 (boxes only, repeat-factor sampling, 300
# detections per image, APr/APc/APf) with the 1x schedule, CenterNet's warm-up
# and gradient clipping; GaussianFocalLoss baseline, heatmap prior pi = 0.01.
_base_ = [
    '../_base_/models/centernet_r18.py',
    '../_base_/datasets/lvis_v1_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['imbfocal'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(num_classes=1203),
    test_cfg=dict(topk=300, max_per_img=300))  # LVIS allows up to 300

param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
    dict(
        type='MultiStepLR',
        begin=0,
        end=12,
        by_epoch=True,
        milestones=[8, 11],
        gamma=0.1)
]
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
