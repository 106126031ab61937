# DIST, ResNet-50 "strikes back" -> MobileNetV2 (1.0x), the seed's stronger
# strategy. The student is mmpretrain's MobileNetV2 (torchvision's layout).
_base_ = './_base_/dist_in1k_b2.py'

# DropoutLinearClsHead (below) is registered by distkd_mm.models.heads.
custom_imports = dict(
    imports=['distkd_mm', 'distkd_mm.datasets', 'distkd_mm.models.heads'],
    allow_failed_imports=False)

model = dict(
    student=dict(
        backbone=dict(type='MobileNetV2', widen_factor=1.0),
        # torchvision's classifier: Dropout(0.2) + Linear, Normal(0, 0.01).
        head=dict(
            type='DropoutLinearClsHead', dropout_rate=0.2, in_channels=1280)))
