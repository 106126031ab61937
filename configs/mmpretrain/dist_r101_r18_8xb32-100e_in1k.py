# DIST, ResNet-101 -> ResNet-18 on ImageNet (the seed's "stronger
# teachers" table, baseline recipe). Teacher: mmpretrain's ResNet-101
# (77.97 top-1); the seed's torchvision weights: see README.md.
_base_ = './_base_/dist_in1k_baseline.py'

custom_imports = dict(
    imports=['distkd_mm', 'distkd_mm.models'], allow_failed_imports=False)

model = dict(
    teacher='mmpretrain::resnet/resnet101_8xb32_in1k.py',
    teacher_ckpt='https://download.openmmlab.com/mmclassification/v0/resnet/'
    'resnet101_8xb32_in1k_20210831-539c63f8.pth')
