# digits-LT in LVIS v1 format (same images and boxes as digits_lt_detection.py),
# read by FastLVISV1Dataset; LongTailMetric reports bbox AP and APr/APc/APf from
# the categories' `frequency` field. The default dataset of imbfocal's
# digits-LT configs. No repeat-factor sampling: with ~600 training images every
# class is above LVIS's oversample_thr=1e-3, so it would be a no-op.
_base_ = './digits_lt_detection.py'

dataset_type = 'FastLVISV1Dataset'
data_root = 'data/digits_lt/'

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        ann_file='annotations/lvis_v1_train.json',
        data_prefix=dict(img='')))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        ann_file='annotations/lvis_v1_val.json',
        data_prefix=dict(img='')))
test_dataloader = val_dataloader

val_evaluator = dict(
    _delete_=True,
    type='LongTailMetric',
    ann_file=data_root + 'annotations/lvis_v1_val.json')
test_evaluator = val_evaluator
