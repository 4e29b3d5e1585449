# MMDetection's RetinaNet R-50-FPN model with imbfocal's all-levels head: the
# classification loss is computed once over all pyramid levels and images, so
# batch-statistic losses (ParameterFreeLoss, EqualizedFocalLoss) see the whole
# mini-batch; identical to RetinaHead for element-wise losses. RetinaHead's
# init_cfg already sets the classification bias to the prior pi = 0.01.
# The ImageNet weights are the file MMEngine's 'torchvision://resnet50' names, given by
# its address so that loading them needs no torchvision.
_base_ = 'mmdet::_base_/models/retinanet_r50_fpn.py'

model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.pytorch.org/models/resnet50-0676ba61.pth')),
    bbox_head=dict(type='RetinaAllLevelsHead'))
