# DIST, WRN-40-2 -> WRN-40-1 on CIFAR-100 (the seed's recipe, tau 4).
# Teacher weights: the seed's release (cifar_ckpts.zip, CRD format); point
# `model.teacher_ckpt` at the file, e.g. with
#   --cfg-options model.teacher_ckpt=CKPT
# with CKPT the seed's wrn_40_2_vanilla/ckpt_epoch_240.pth.
_base_ = './_base_/dist_cifar100.py'

model = dict(
    student=dict(
        backbone=dict(type='CIFARWideResNet', depth=40, widen_factor=1)),
    teacher=dict(
        backbone=dict(type='CIFARWideResNet', depth=40, widen_factor=2)),
    teacher_ckpt='data/cifar_ckpts/wrn_40_2_vanilla/ckpt_epoch_240.pth')
