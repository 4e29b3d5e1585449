# digits-LT, preset lt100 (`python tools/make_digits_lt.py --preset lt100 --out
# data/digits_lt100`): 100 classes '00'-'99', each object a two-digit number
# handwritten side by side, on 128x128 cluttered images. The train split is
# long-tailed (300 down to 2 images per class; 22 frequent, 45 common, 33 rare
# by LVIS's rule); val (for choosing settings) and test (for final tables) are
# balanced and drawn from source digits of their own. LVIS v1 format, read by
# FastLVISV1Dataset; LongTailMetric reports bbox AP and APr/APc/APf.
# The val loop evaluates the val split; the test loop (tools/test.py) the test split.
# Images load in the main process (num_workers=0): on 2 CPU cores, loader processes take
# cores from the training step's threads and made an iteration 30% slower (0.59 against
# 0.45 s).
_base_ = './digits_lt_lvis.py'

data_root = 'data/digits_lt100/'
metainfo = dict(classes=tuple(f'{k:02d}' for k in range(100)))

train_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/lvis_v1_train.json'))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/lvis_v1_val.json'))
test_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        type='FastLVISV1Dataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/lvis_v1_test.json',
        data_prefix=dict(img=''),
        test_mode=True,
        pipeline={{_base_.test_pipeline}},
        backend_args=None))

val_evaluator = dict(ann_file=data_root + 'annotations/lvis_v1_val.json')
test_evaluator = dict(
    _delete_=True,
    type='LongTailMetric',
    ann_file=data_root + 'annotations/lvis_v1_test.json')
