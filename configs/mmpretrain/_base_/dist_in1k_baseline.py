# The seed's ImageNet "baseline setting" (resnet_dist.yaml) around a
# ResNet-18 student: 100 epochs, SGD lr 0.1 momentum 0.9 Nesterov, weight
# decay 1e-4 on conv/fc weights only (not on norm layers or biases), lr x0.1
# at epochs 30/60/90, 32 images x 8 GPUs, RandomResizedCrop 224 + flip
# (PIL resizing, last partial batch dropped, as the seed's loader).
# DIST on the logits (_base_/dist_logits.py): tau 1, weight 2, beside the
# student's CE (weight 1).
# The student is initialised as the seed's torchvision one: no zero-init of
# the last BN of each block, PyTorch's default Linear init for the
# classifier (mmpretrain's own recipe uses zero-init and Normal(0.01)).
# The best checkpoint by top-1 is kept, as the seed's checkpoint manager
# does (validation every epoch). Leaves set the teacher (and change the
# student where it is not R18).
_base_ = [
    'mmpretrain::resnet/resnet18_8xb32_in1k.py', './dist_logits.py',
    '../../_base_/seed_fp32_teacher.py', './seed_in1k_test_pipeline.py'
]

model = dict(
    _delete_=True,
    type='Distiller',
    student=dict(
        type='ImageClassifier',
        backbone=dict(
            type='ResNet',
            depth=18,
            num_stages=4,
            out_indices=(3, ),
            style='pytorch',
            zero_init_residual=False),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=1000,
            in_channels=512,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, 5),
            init_cfg=None)),
    teacher=None,
    teacher_ckpt=None,
    teacher_autocast={{_base_.seed_teacher_autocast}},
    distill_losses=dict(loss_dist={{_base_.loss_dist}}))

# Pixels as the seed's: it resizes with PIL (torchvision transforms on PIL
# images), as its torchvision teachers were trained, and mmcv's `pillow`
# backend gives the same pixels (mmcv's default cv2 bilinear does not: the
# measurement is in configs/mmpretrain/README.md). mmpretrain's own (cv2)
# pipelines stay available to the -mmpretrain variants, whose teachers were
# trained on them.
mmpretrain_train_pipeline = {{_base_.train_pipeline}}
mmpretrain_test_pipeline = {{_base_.test_pipeline}}
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = {{_base_.seed_test_pipeline}}
# The seed's loader drops the last partial batch (5004 iterations an epoch
# on 8 GPUs, not 5005).
train_dataloader = dict(drop_last=True, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))

default_hooks = dict(
    teacher_gate={{_base_.teacher_gate}},
    checkpoint=dict(
        type='CheckpointHook',
        interval=1,
        save_best='accuracy/top1',
        rule='greater'))
