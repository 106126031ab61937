# The seed's "stronger training strategy" (dist_b2.yaml): 450 epochs,
# TF-style RMSprop (timm's RMSpropTF: lr 0.048, alpha 0.9, eps 1e-3,
# momentum 0.9), weight decay 1e-5 not on 1-D parameters (norms, biases),
# 3 warm-up epochs from 1e-6 (one value per epoch), then lr x0.97 every 2.4
# epochs, label smoothing 0.1, the seed's own RandAugment (rand-m9-mstd0.5:
# DISTRandAugment) + random erasing 0.2 after normalisation
# (DISTRandomErasing), PIL resizing, the last partial batch dropped, EMA of
# the weights (decay 0.9999, every iteration), 96 images x 8 GPUs; the best
# checkpoint by (EMA) top-1 is kept. DIST on the logits, tau 1, weight 2
# (./dist_logits.py).
# Teacher: ResNet-50 "strikes back" with mmpretrain's own RSB-A1 weights
# (the seed loads timm's `resnet50`, whose exact file is not recorded; the
# top-1 of both: configs/mmpretrain/README.md). Leaves set the student.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    'mmpretrain::_base_/default_runtime.py', './dist_logits.py',
    '../../_base_/seed_fp32_teacher.py', './seed_in1k_test_pipeline.py'
]

# DISTRandAugment and DISTRandomErasing (below) are registered by
# distkd_mm.datasets.
custom_imports = dict(
    imports=['distkd_mm', 'distkd_mm.datasets'], allow_failed_imports=False)

# PIL resizing (mmcv's `pillow` backend), as the seed's torchvision
# transforms on PIL images (see _base_/dist_in1k_baseline.py).
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    # The seed's `rand-m9-mstd0.5`: its 19-op pool, non-increasing
    # magnitudes, 2 ops per image each with probability 0.5, magnitude
    # N(9, 0.5); fill = ImageNet mean, bilinear affine ops.
    dict(type='DISTRandAugment', magnitude=9, magnitude_std=0.5),
    # Random erasing runs after normalisation, in the student's data
    # preprocessor (model.student.train_cfg below), as the seed's.
    dict(type='PackInputs'),
]
test_pipeline = {{_base_.seed_test_pipeline}}
# The seed's loader drops the last partial batch (1668 iterations an epoch
# on 8 GPUs, not 1669).
train_dataloader = dict(
    batch_size=96, drop_last=True, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

model = dict(
    type='Distiller',
    student=dict(
        type='ImageClassifier',
        # backbone (and the head's init, where the seed's student differs
        # from PyTorch's default Linear init): set by the leaves
        neck=dict(type='GlobalAveragePooling'),
        # timm's RandomErasing(0.2, mode='pixel') of the seed: one box of
        # per-pixel N(0, 1) noise, unclipped, on the normalised batch. The
        # teacher's batch is derived from this one, so it sees the same
        # erased images, as the seed's teacher does.
        train_cfg=dict(augments=dict(type='DISTRandomErasing', prob=0.2)),
        head=dict(
            type='LinearClsHead',
            num_classes=1000,
            in_channels=None,
            loss=dict(
                type='LabelSmoothLoss',
                label_smooth_val=0.1,
                mode='original',
                loss_weight=1.0),
            topk=(1, 5))),
    teacher='mmpretrain::resnet/resnet50_8xb256-rsb-a1-600e_in1k.py',
    teacher_ckpt='https://download.openmmlab.com/mmclassification/v0/resnet/'
    'resnet50_8xb256-rsb-a1-600e_in1k_20211228-20e21305.pth',
    teacher_autocast={{_base_.seed_teacher_autocast}},
    distill_losses=dict(loss_dist={{_base_.loss_dist}}))

optim_wrapper = dict(
    optimizer=dict(
        type='RMSpropTF',
        lr=0.048,
        alpha=0.9,
        eps=1e-3,
        momentum=0.9,
        weight_decay=1e-5),
    paramwise_cfg=dict(
        norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0))
param_scheduler = [
    # 1e-6, 0.016, 0.032 in epochs 0-2 (LinearLR's `end` is exclusive),
    # 0.048 from epoch 3 on.
    dict(
        type='LinearLR',
        start_factor=1e-6 / 0.048,
        by_epoch=True,
        begin=0,
        end=4,
        convert_to_iter_based=False),
    dict(
        type='FractionalStepLR',
        step_size=2.4,
        gamma=0.97,
        by_epoch=True,
        begin=3,
        convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=450, val_interval=1)
# Validation runs on the EMA weights (StudentEMAHook), so this keeps the
# best EMA top-1, as the seed ranks its checkpoints with EMA on.
default_hooks = dict(
    teacher_gate={{_base_.teacher_gate}},
    checkpoint=dict(
        type='CheckpointHook',
        interval=1,
        save_best='accuracy/top1',
        rule='greater'))
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=768)

# EMA of the student only (the plain EMAHook would copy the teacher too).
custom_hooks = [
    dict(
        type='StudentEMAHook',
        momentum=1e-4,
        update_buffers=True,
        priority='ABOVE_NORMAL')
]
