# A short CPU schedule for digits-LT (~600 images of 128x128, batch 8):
# 12 epochs, warm-up over the first 100 iterations, lr steps at 8 and 11,
# validation and checkpoints every 4 epochs (only the latest 2 kept).
# AdamW, because the models train from scratch: with SGD (lr 0.01) RetinaNet's
# classifier had not started learning after 12 epochs (bbox mAP 0.0005); with
# AdamW it trained (~3 minutes a run on 2 CPU cores).
# Includes MMDetection's default runtime (it overrides its hooks' intervals).
_base_ = 'mmdet::_base_/default_runtime.py'

max_epochs = 12
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[8, 11],
        gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.001, weight_decay=0.05),
    clip_grad=dict(max_norm=35, norm_type=2))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=4, max_keep_ckpts=2))
log_processor = dict(window_size=10)

auto_scale_lr = dict(enable=False, base_batch_size=8)
