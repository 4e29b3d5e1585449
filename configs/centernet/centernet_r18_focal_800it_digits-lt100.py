# CenterNet R-18 on digits-LT lt100 (100 classes, LVIS format, APr/APc/APf) on CPU;
# GaussianFocalLoss baseline, heatmap prior pi = 0.01. The backbone is the half-width
# ResNet-18 pretrained on the train split's single digits
# (tools/pretrain_digits_backbone.py). The last two stages are dilated instead of strided
# (C5 at stride 8, 16x16 on the 128x128 images) and one deconvolution brings it to the
# stride-4 heatmap: at MMDetection's stride 32 the 14-38 px objects share 4x4 cells and
# the classifier of 100 classes did not learn (val AP 0.2, docs/configs.md).
_base_ = [
    '../_base_/models/centernet_r18.py',
    '../_base_/datasets/digits_lt100_lvis.py',
    '../_base_/schedules/schedule_digits_lt100.py'
]
custom_imports = dict(imports=['imbfocal'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        base_channels=32,
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='data/digits_lt100/pretrained/resnet18_w32_digits.pth')),
    neck=dict(in_channels=256, num_deconv_filters=(64, ), num_deconv_kernels=(4, )),
    bbox_head=dict(num_classes=100),
    test_cfg=dict(topk=100, max_per_img=100))
train_dataloader = dict(batch_size=16)
