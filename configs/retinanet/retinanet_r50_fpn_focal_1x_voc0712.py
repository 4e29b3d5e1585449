# MMDetection's pascal_voc/retinanet_r50_fpn_1x_voc0712.py (VOC07+12 trainval,
# VOC07 test mAP with VOCMetric) with RetinaAllLevelsHead, focal loss baseline.
_base_ = [
    '../_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/voc0712.py',
    '../_base_/schedules/schedule_voc0712.py',
    'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['imbfocal'], allow_failed_imports=False)

model = dict(bbox_head=dict(num_classes=20))
