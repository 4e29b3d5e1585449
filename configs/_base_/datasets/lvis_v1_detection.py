# LVIS v1 detection (boxes only), without the PyPI `lvis` package: MMDetection's
# lvis_v1_instance.py (repeat-factor sampling, ClassBalancedDataset with
# oversample_thr=1e-3) with imbfocal's FastLVISV1Dataset, mask loading removed,
# and LongTailMetric reporting bbox AP and APr/APc/APf.
_base_ = 'mmdet::_base_/datasets/lvis_v1_instance.py'

dataset_type = 'FastLVISV1Dataset'
data_root = 'data/lvis_v1/'
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='RandomChoiceResize',
        scales=[(1333, 640), (1333, 672), (1333, 704), (1333, 736),
                (1333, 768), (1333, 800)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]

train_dataloader = dict(
    dataset=dict(
        type='ClassBalancedDataset',
        oversample_thr=1e-3,
        dataset=dict(
            type=dataset_type,
            data_root=data_root,
            pipeline=train_pipeline)))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type, data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(
    _delete_=True,
    type='LongTailMetric',
    ann_file=data_root + 'annotations/lvis_v1_val.json')
test_evaluator = val_evaluator
