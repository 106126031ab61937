# DIST, ResNet-56 -> ResNet-20 on CIFAR-100 (the seed's recipe, tau 4).
# Teacher weights: the seed's release (cifar_ckpts.zip, CRD format); point
# `model.teacher_ckpt` at the file, e.g. with
#   --cfg-options model.teacher_ckpt=CKPT
# with CKPT the seed's resnet56_vanilla/ckpt_epoch_240.pth.
_base_ = './_base_/dist_cifar100.py'

model = dict(
    student=dict(backbone=dict(type='CIFARResNet', arch='resnet20')),
    teacher=dict(backbone=dict(type='CIFARResNet', arch='resnet56')),
    teacher_ckpt='data/cifar_ckpts/resnet56_vanilla/ckpt_epoch_240.pth')
