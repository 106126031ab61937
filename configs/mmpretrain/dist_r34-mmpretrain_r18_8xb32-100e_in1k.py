# DIST, ResNet-34 -> ResNet-18 on ImageNet (the seed's baseline setting).
# The teacher is mmpretrain's ResNet-34 with its model-zoo weights (73.62
# top-1); dist_r34_r18_8xb32-100e_in1k.py uses the seed's torchvision weights.
_base_ = './_base_/dist_in1k_baseline.py'

custom_imports = dict(
    imports=['distkd_mm', 'distkd_mm.models'], allow_failed_imports=False)

model = dict(
    teacher='mmpretrain::resnet/resnet34_8xb32_in1k.py',
    teacher_ckpt='https://download.openmmlab.com/mmclassification/v0/resnet/'
    'resnet34_8xb32_in1k_20210831-f257d4e6.pth')
