# CPU schedule of the digits-LT lt100 benchmark: 800 iterations of 16 images (about 13
# epochs of the 1,000 training images), counted in iterations so that repeat-factor
# sampling, which lengthens an epoch, trains for as long as plain sampling does. AdamW,
# linear warm-up over 100 iterations, cosine decay to 1% of the learning rate; one
# validation and one checkpoint, at the end.
_base_ = 'mmdet::_base_/default_runtime.py'

max_iters = 800
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(
        type='CosineAnnealingLR',
        eta_min_ratio=0.01,
        begin=0,
        end=max_iters,
        T_max=max_iters,
        by_epoch=False)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.002, weight_decay=0.05),
    clip_grad=dict(max_norm=35, norm_type=2))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=max_iters,
        max_keep_ckpts=1))
log_processor = dict(by_epoch=False, window_size=50)

auto_scale_lr = dict(enable=False, base_batch_size=16)
