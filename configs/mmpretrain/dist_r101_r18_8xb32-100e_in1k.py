# DIST, ResNet-101 -> ResNet-18 on ImageNet (the seed's "stronger teachers"
# table, baseline recipe). Seed protocol: the seed's teacher, torchvision's
# ResNet-101 (IMAGENET1K_V1), its keys remapped to mmpretrain's
# ResNet at load time. Variant with mmpretrain's teacher:
# dist_r101-mmpretrain_r18_8xb32-100e_in1k.py.
_base_ = './_base_/dist_in1k_baseline.py'

model = dict(
    teacher='mmpretrain::resnet/resnet101_8xb32_in1k.py',
    teacher_ckpt='torchvision://resnet101',
    teacher_ckpt_converter='torchvision_resnet')
