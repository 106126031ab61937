# The seed's CIFAR-100 recipe (dist_cifar.yaml, the CRD recipe): 240 epochs,
# SGD lr 0.05 momentum 0.9 without Nesterov, weight decay 5e-4 on every
# parameter, lr x0.1 at epochs 150/180/210, batch 64 on one GPU, RandomCrop
# 32 (padding 4) + flip, the dataset's mean/std. DIST with tau 4, weight 2.
# The networks are the seed's (distkd_mm/models/cifar): backbones that hold
# their classifier and return logits, under mmpretrain's ClsHead; the
# teacher checkpoint is the seed's release file, its keys moved under
# `backbone.` at load time. Leaves set the two backbones and the teacher
# checkpoint path.
_base_ = [
    'mmpretrain::_base_/datasets/cifar100_bs16.py',
    'mmpretrain::_base_/default_runtime.py',
    '../../_base_/seed_fp32_teacher.py'
]

custom_imports = dict(imports=['distkd_mm'], allow_failed_imports=False)

data_preprocessor = dict(
    num_classes=100,
    mean=[0.5071 * 255, 0.4867 * 255, 0.4408 * 255],
    std=[0.2675 * 255, 0.2565 * 255, 0.2761 * 255],
    to_rgb=False)

# The seed's loader drops the last partial batch: 781 iterations an epoch
# (50000 / 64), not 782.
train_dataloader = dict(batch_size=64, drop_last=True)
val_dataloader = dict(batch_size=64)
test_dataloader = val_dataloader

model = dict(
    type='Distiller',
    student=dict(
        type='ImageClassifier',
        # backbone: set by the leaves
        head=dict(
            type='ClsHead',
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, 5))),
    teacher=dict(type='ImageClassifier', head=dict(type='ClsHead')),
    teacher_ckpt=None,
    teacher_ckpt_converter='cifar_backbone',
    teacher_autocast={{_base_.seed_teacher_autocast}},
    # The backbones output the logits: tap the head, whose input they are.
    distill_losses=dict(
        loss_dist=dict(
            student='head',
            teacher='head',
            loss=dict(type='DISTLoss', tau=4.0, loss_weight=2.0))))

optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=False))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[150, 180, 210], gamma=0.1)

train_cfg = dict(by_epoch=True, max_epochs=240, val_interval=1)
# The seed's checkpoint manager keeps the best epochs by top-1.
default_hooks = dict(
    # The teacher gate (see _base_/dist_logits.py).
    teacher_gate=dict(type='TeacherGateHook', max_eval_batches=10),
    checkpoint=dict(
        type='CheckpointHook',
        interval=1,
        save_best='accuracy/top1',
        rule='greater'))
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=64)
