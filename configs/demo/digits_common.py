# Data, schedule and runtime shared by every digits demo config (no model).
# scikit-learn's bundled digits: 1797 real 8x8 grey images, split 75/25 by
# class with a fixed split seed, so every run is scored on the same images.
custom_imports = dict(
    imports=['distkd_mm', 'distkd_mm.datasets'], allow_failed_imports=False)
default_scope = 'mmpretrain'

dataset_type = 'DigitsDataset'
# Grey levels are rescaled to 0..255 by the dataset; one input channel.
data_preprocessor = dict(
    type='ClsDataPreprocessor',
    num_classes=10,
    mean=[127.5],
    std=[127.5],
    to_rgb=False)

train_pipeline = [
    # A 1-pixel shift is the digits' counterpart of CIFAR's 4-pixel crop;
    # no flip: a mirrored digit is a different (or no) digit.
    dict(type='RandomCrop', crop_size=8, padding=1),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]

# num_workers=0: the whole dataset is 100 KB in memory, and worker start-up
# would cost more than the data loading it saves.
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(type=dataset_type, split='train', pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=256,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(type=dataset_type, split='val', pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

max_epochs = 20
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4))
# T_max defaults to end - begin, so overriding `param_scheduler.end`
# together with `train_cfg.max_epochs` keeps the cosine schedule whole.
param_scheduler = dict(
    type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Only the last checkpoint is kept: it is the demo's teacher checkpoint.
    checkpoint=dict(
        type='CheckpointHook', interval=1, max_keep_ckpts=1, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False),
)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='gloo'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False
# Teacher, baseline and distilled students share the seed and schedule.
randomness = dict(seed=0, deterministic=False)
