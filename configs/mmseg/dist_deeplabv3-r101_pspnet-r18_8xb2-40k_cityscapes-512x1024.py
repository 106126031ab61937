# Seed protocol of the seed's row PSPNet-R18 <- DeepLabV3-R101 (its numbers:
# configs/seed_results.yml): the DeepLabV3-R18 sibling's networks, data,
# schedule, fp32 CIRKD teacher and DIST terms, with the seed's PSP head
# (bins 1/2/3/6, 128 channels) on the deep-stem ResNet-18 student.
# Before training, convert the seed's ImageNet backbone and point at the
# teacher file (see README.md):
#   python tools/convert_cirkd_seg.py resnet18-imagenet.pth \
#       data/cirkd_ckpts/resnet18-imagenet_mmseg.pth
_base_ = './dist_deeplabv3-r101_deeplabv3-r18_8xb2-40k_cityscapes-512x1024.py'

model = dict(
    student=dict(
        # mmseg's PSPHead is the seed's: 128 channels per pooling branch
        # (in_channels / 4), a 3x3 conv-BN-ReLU to 128, Dropout(0.1), 1x1.
        decode_head=dict(
            _delete_=True,
            type='PSPHead',
            in_channels=512,
            in_index=3,
            channels=128,
            pool_scales=(1, 2, 3, 6),
            dropout_ratio=0.1,
            num_classes=19,
            norm_cfg={{_base_.student_norm_cfg}},
            align_corners=True,
            loss_decode={{_base_.student_ce}})))
