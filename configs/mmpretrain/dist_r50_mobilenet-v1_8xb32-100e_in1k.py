# DIST, ResNet-50 -> MobileNetV1 on ImageNet (the seed's baseline setting).
# MobileNetV1 (1024-d) is ours: distkd_mm/models/mobilenet_v1.py.
_base_ = './_base_/dist_in1k_baseline.py'

custom_imports = dict(
    imports=['distkd_mm', 'distkd_mm.models'], allow_failed_imports=False)

model = dict(
    student=dict(
        backbone=dict(_delete_=True, type='MobileNetV1'),
        head=dict(in_channels=1024)),
    teacher='mmpretrain::resnet/resnet50_8xb32_in1k.py',
    teacher_ckpt='https://download.openmmlab.com/mmclassification/v0/resnet/'
    'resnet50_8xb32_in1k_20210831-ea4938fc.pth')
