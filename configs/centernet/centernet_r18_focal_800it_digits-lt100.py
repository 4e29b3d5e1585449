# CenterNet R-18 on digits-LT lt100 (100 classes, LVIS format, APr/APc/APf) on CPU;
# GaussianFocalLoss baseline, heatmap prior pi = 0.01. The backbone is the half-width
# ResNet-18 pretrained on the train split's single digits
# (tools/pretrain_digits_backbone.py); narrower deconvolutions than MMDetection's.
_base_ = [
    '../_base_/models/centernet_r18.py',
    '../_base_/datasets/digits_lt100_lvis.py',
    '../_base_/schedules/schedule_digits_lt100.py'
]
custom_imports = dict(imports=['imbfocal'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        base_channels=32,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='data/digits_lt100/pretrained/resnet18_w32_digits.pth')),
    neck=dict(in_channels=256, num_deconv_filters=(128, 64, 64)),
    bbox_head=dict(num_classes=100),
    test_cfg=dict(topk=100, max_per_img=100))
train_dataloader = dict(batch_size=16)
