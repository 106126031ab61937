# DIST, ResNet-50 "strikes back" -> EfficientNet-B0, the seed's stronger
# strategy. mmpretrain's EfficientNet uses TF "same" padding, like the
# seed's timm `tf_efficientnet_b0`.
_base_ = './_base_/dist_in1k_b2.py'

model = dict(
    student=dict(
        backbone=dict(type='EfficientNet', arch='b0'),
        # timm's classifier init: U(-1/sqrt(1000), 1/sqrt(1000)), bias 0; no
        # dropout (the seed's builder does not pass its `drop` to timm).
        head=dict(
            in_channels=1280,
            init_cfg=dict(
                type='Uniform',
                layer='Linear',
                a=-1000**-0.5,
                b=1000**-0.5,
                bias=0))))
