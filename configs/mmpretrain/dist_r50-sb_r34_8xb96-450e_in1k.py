# DIST, ResNet-50 "strikes back" -> ResNet-34, the seed's stronger strategy.
_base_ = './_base_/dist_in1k_b2.py'

custom_imports = dict(
    imports=[
        'distkd_mm', 'distkd_mm.datasets', 'distkd_mm.models',
        'distkd_mm.models.heads', 'distkd_mm.optim'
    ],
    allow_failed_imports=False)

model = dict(
    student=dict(
        # torchvision's ResNet-34 init, as the seed's tv_resnet34.
        backbone=dict(
            type='ResNet',
            depth=34,
            out_indices=(3, ),
            zero_init_residual=False),
        head=dict(in_channels=512, init_cfg=None)))
