# MMDetection's centernet_r18_8xb16-crop512-140e_coco.py (GaussianFocalLoss
# baseline) with CenterNetPriorHead: the heatmap bias starts from the prior
# pi = 0.01 like RetinaNet's and FCOS's (MMDetection hard-codes 0.1).
_base_ = 'mmdet::centernet/centernet_r18_8xb16-crop512-140e_coco.py'
custom_imports = dict(imports=['imbfocal'], allow_failed_imports=False)

# The ImageNet weights by their address (MMEngine's 'torchvision://resnet18' imports
# torchvision to find the same file).
model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.pytorch.org/models/resnet18-f37072fd.pth')),
    bbox_head=dict(type='CenterNetPriorHead', prior_prob=0.01))
