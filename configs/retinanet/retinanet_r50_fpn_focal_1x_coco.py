# MMDetection's retinanet_r50_fpn_1x_coco.py with RetinaAllLevelsHead (focal
# loss baseline; numerically identical to MMDetection's RetinaHead).
_base_ = [
    '../_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py', 'mmdet::retinanet/retinanet_tta.py'
]
custom_imports = dict(imports=['imbfocal'], allow_failed_imports=False)

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
