# DIST, ResNet-50 -> MobileNetV2 (x0.5) on CIFAR-100 (the seed's recipe).
# Teacher weights: the seed's release (cifar_ckpts.zip, CRD format); point
# `model.teacher_ckpt` at the file, e.g. with
#   --cfg-options model.teacher_ckpt=CKPT
# with CKPT the seed's ResNet50_vanilla/ckpt_epoch_240.pth.
_base_ = './_base_/dist_cifar100.py'

model = dict(
    student=dict(
        backbone=dict(
            type='CIFARMobileNetV2', expand_ratio=6, widen_factor=0.5)),
    teacher=dict(backbone=dict(type='CIFARResNetV2', arch='ResNet50')),
    teacher_ckpt='data/cifar_ckpts/ResNet50_vanilla/ckpt_epoch_240.pth')

# The seed trains this student with lr 0.01 (--lr 0.01 --warmup-lr 0.01).
optim_wrapper = dict(optimizer=dict(lr=0.01))
