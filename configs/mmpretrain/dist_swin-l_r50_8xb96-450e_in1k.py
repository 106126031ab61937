# DIST, Swin-L -> ResNet-50, the seed's stronger strategy. The teacher is
# mmpretrain's Swin-L (ImageNet-21k pre-trained, 86.24 top-1 at 224), the
# same weights as the seed's timm `swin_large_patch4_window7_224`.
_base_ = './_base_/dist_in1k_b2.py'

model = dict(
    student=dict(
        # torchvision's ResNet-50 init, as the seed's tv_resnet50.
        backbone=dict(
            type='ResNet',
            depth=50,
            out_indices=(3, ),
            zero_init_residual=False),
        head=dict(in_channels=2048, init_cfg=None)),
    teacher='mmpretrain::swin_transformer/swin-large_16xb64_in1k.py',
    teacher_ckpt='https://download.openmmlab.com/mmclassification/v0/'
    'swin-transformer/convert/'
    'swin_large_patch4_window7_224_22kto1k-5f0996db.pth')
