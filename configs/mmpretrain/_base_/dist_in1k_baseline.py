# The seed's ImageNet "baseline setting" (resnet_dist.yaml) around a
# ResNet-18 student: 100 epochs, SGD lr 0.1 momentum 0.9 Nesterov, weight
# decay 1e-4 on conv/fc weights only (not on norm layers or biases), lr x0.1
# at epochs 30/60/90, 32 images x 8 GPUs, RandomResizedCrop 224 + flip.
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
    '../../_base_/seed_fp32_teacher.py'
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
