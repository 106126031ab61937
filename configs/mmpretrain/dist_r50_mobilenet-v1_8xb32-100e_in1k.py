# DIST, ResNet-50 -> MobileNetV1 on ImageNet (the seed's baseline setting).
# Seed protocol: the seed's teacher, torchvision's ResNet-50 (IMAGENET1K_V1),
# its keys remapped to mmpretrain's ResNet at load time. Variant with
# mmpretrain's teacher: dist_r50-mmpretrain_mobilenet-v1_8xb32-100e_in1k.py.
_base_ = './_base_/dist_in1k_baseline.py'

model = dict(
    student=dict(
        backbone=dict(_delete_=True, type='MobileNetV1'),
        head=dict(in_channels=1024)),
    teacher='mmpretrain::resnet/resnet50_8xb32_in1k.py',
    teacher_ckpt='torchvision://resnet50',
    teacher_ckpt_converter='torchvision_resnet')
