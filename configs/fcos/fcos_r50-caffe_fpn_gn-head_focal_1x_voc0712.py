# FCOS R-50-caffe-FPN (GN head) on VOC07+12 trainval, VOC07 test mAP
# (VOCMetric), with the schedule of MMDetection's RetinaNet VOC config and
# FCOS's optimiser settings; focal loss baseline.
_base_ = [
    '../_base_/models/fcos_r50-caffe_fpn_gn-head.py',
    'mmdet::_base_/datasets/voc0712.py',
    '../_base_/schedules/schedule_voc0712.py',
    'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['imbfocal'], allow_failed_imports=False)

model = dict(bbox_head=dict(num_classes=20))
optim_wrapper = dict(
    paramwise_cfg=dict(bias_lr_mult=2., bias_decay_mult=0.),
    clip_grad=dict(max_norm=35, norm_type=2))
