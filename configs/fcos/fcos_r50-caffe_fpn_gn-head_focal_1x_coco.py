# MMDetection's fcos_r50-caffe_fpn_gn-head_1x_coco.py, focal loss baseline.
# FCOSHead already computes the classification loss once over all levels and
# images, and initialises the classification bias to the prior pi = 0.01.
_base_ = 'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'
custom_imports = dict(imports=['imbfocal'], allow_failed_imports=False)
