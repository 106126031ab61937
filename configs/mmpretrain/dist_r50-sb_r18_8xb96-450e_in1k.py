# DIST, ResNet-50 "strikes back" -> ResNet-18, the seed's stronger strategy.
_base_ = './_base_/dist_in1k_b2.py'

model = dict(
    student=dict(
        # torchvision's ResNet-18 init, as the seed's tv_resnet18.
        backbone=dict(
            type='ResNet',
            depth=18,
            out_indices=(3, ),
            zero_init_residual=False),
        head=dict(in_channels=512, init_cfg=None)))
