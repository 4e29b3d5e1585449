# CenterNet R-18 on VOC07+12 trainval, VOC07 test mAP (VOCMetric), with the
# schedule of MMDetection's RetinaNet VOC config and CenterNet's gradient
# clipping; GaussianFocalLoss baseline, heatmap prior pi = 0.01.
_base_ = [
    '../_base_/models/centernet_r18.py', 'mmdet::_base_/datasets/voc0712.py',
    '../_base_/schedules/schedule_voc0712.py',
    'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['imbfocal'], allow_failed_imports=False)

model = dict(bbox_head=dict(num_classes=20))
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
