# The model of MMDetection's centernet/centernet_r18_8xb16-crop512-140e_coco.py
# (no DCN) with imbfocal's CenterNetPriorHead: the heatmap bias starts from the
# prior pi = 0.01 like RetinaNet's and FCOS's (MMDetection hard-codes 0.1).
# pad_size_divisor=32 lets it run on ordinary Resize pipelines (LVIS, VOC,
# digits-LT); CenterNet's own RandomCenterCropPad pipeline pads by itself.
model = dict(
    type='CenterNet',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='ResNet',
        depth=18,
        norm_eval=False,
        norm_cfg=dict(type='BN'),
        # the file MMEngine's 'torchvision://resnet18' names, loaded without torchvision
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.pytorch.org/models/resnet18-f37072fd.pth')),
    neck=dict(
        type='CTResNetNeck',
        in_channels=512,
        num_deconv_filters=(256, 128, 64),
        num_deconv_kernels=(4, 4, 4),
        use_dcn=False),
    bbox_head=dict(
        type='CenterNetPriorHead',
        prior_prob=0.01,
        num_classes=80,
        in_channels=64,
        feat_channels=64,
        loss_center_heatmap=dict(type='GaussianFocalLoss', loss_weight=1.0),
        loss_wh=dict(type='L1Loss', loss_weight=0.1),
        loss_offset=dict(type='L1Loss', loss_weight=1.0)),
    train_cfg=None,
    test_cfg=dict(topk=100, local_maximum_kernel=3, max_per_img=100))
