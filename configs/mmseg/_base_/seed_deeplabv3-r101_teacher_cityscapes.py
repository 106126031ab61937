# The seed's own teacher: CIRKD's DeepLabV3-ResNet101
# (`deeplabv3_resnet101_citys_best_model.pth`), rebuilt in mmseg modules
# (ResNetV1s-101 deep stem, SeedASPPHead 256 channels, FCN auxiliary head)
# and read from the seed's file directly (`cirkd_segmentation` converter;
# or convert it once with tools/convert_cirkd_seg.py). The DIST taps are
# those of ./dist_heads.py (decode head weight 1, auxiliary head 0.4). Not a
# runnable config.
_base_ = './dist_deeplabv3-r101_teacher_cityscapes.py'

custom_imports = dict(
    imports=['distkd_mm', 'distkd_mm.models.seg'], allow_failed_imports=False)

norm_cfg = dict(type='BN', requires_grad=True)
teacher = dict(
    _delete_=True,
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[104.008, 116.669, 122.679],
        std=[1.0, 1.0, 1.0],
        bgr_to_rgb=False,
        pad_val=0,
        seg_pad_val=255),
    backbone=dict(
        type='ResNetV1s',
        depth=101,
        stem_channels=128,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        contract_dilation=True,
        norm_cfg=norm_cfg,
        style='pytorch'),
    decode_head=dict(
        type='SeedASPPHead',
        in_channels=2048,
        in_index=3,
        channels=256,
        dilations=(12, 24, 36),
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=True),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=1024,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=True),
    test_cfg=dict(mode='whole'))
teacher_ckpt = 'data/cirkd_ckpts/deeplabv3_resnet101_citys_best_model.pth'
teacher_ckpt_converter = 'cirkd_segmentation'
