# DIST, ResNet-152 -> ResNet-18 on ImageNet (the seed's "stronger
# teachers" table, baseline recipe). Teacher: mmpretrain's ResNet-152
# (78.48 top-1); the seed's torchvision weights: see README.md.
_base_ = './_base_/dist_in1k_baseline.py'

custom_imports = dict(
    imports=['distkd_mm', 'distkd_mm.models'], allow_failed_imports=False)

model = dict(
    teacher='mmpretrain::resnet/resnet152_8xb32_in1k.py',
    teacher_ckpt='https://download.openmmlab.com/mmclassification/v0/resnet/'
    'resnet152_8xb32_in1k_20210901-4d7582fa.pth')
