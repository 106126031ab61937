# DIST, ResNet-32x4 -> ShuffleNetV1 on CIFAR-100 (the seed's recipe, tau 4).
# Teacher weights: the seed's release (cifar_ckpts.zip, CRD format); point
# `model.teacher_ckpt` at the file, e.g. with
#   --cfg-options model.teacher_ckpt=CKPT
# with CKPT the seed's resnet32x4_vanilla/ckpt_epoch_240.pth.
_base_ = './_base_/dist_cifar100.py'

model = dict(
    student=dict(backbone=dict(type='CIFARShuffleNetV1')),
    teacher=dict(backbone=dict(type='CIFARResNet', arch='resnet32x4')),
    teacher_ckpt='data/cifar_ckpts/resnet32x4_vanilla/ckpt_epoch_240.pth')

# The seed trains this student with lr 0.01 (--lr 0.01 --warmup-lr 0.01).
optim_wrapper = dict(optimizer=dict(lr=0.01))
