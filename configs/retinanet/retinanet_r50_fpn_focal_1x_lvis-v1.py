# RetinaNet R-50-FPN on LVIS v1 (boxes only, repeat-factor sampling, 300
# detections per image, low score threshold, APr/APc/APf), focal loss baseline.
_base_ = [
    '../_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/lvis_v1_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['imbfocal'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(num_classes=1203),
    test_cfg=dict(score_thr=0.0001, max_per_img=300))  # LVIS allows up to 300
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
