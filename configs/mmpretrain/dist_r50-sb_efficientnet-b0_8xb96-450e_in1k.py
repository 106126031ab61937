# DIST, ResNet-50 "strikes back" -> EfficientNet-B0, the seed's stronger
# strategy. mmpretrain's EfficientNet uses TF "same" padding, like the
# seed's timm `tf_efficientnet_b0`.
_base_ = './_base_/dist_in1k_b2.py'

custom_imports = dict(
    imports=['distkd_mm', 'distkd_mm.models', 'distkd_mm.optim'],
    allow_failed_imports=False)

model = dict(
    student=dict(
        backbone=dict(type='EfficientNet', arch='b0'),
        head=dict(in_channels=1280)))
