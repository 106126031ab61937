# Seed protocol of the seed's row DeepLabV3-R18 <- DeepLabV3-R101 (its numbers:
# configs/seed_results.yml): the seed's networks (deep-stem ResNet-18 student
# with its DeepLabV3 head, 128 channels; CIRKD's DeepLabV3-R101 teacher), its
# data, schedule and checkpoint selection (_base_/seed_cityscapes_40k.py) and
# DIST on both heads (weight 1 and 0.4).
# Before training, convert the seed's ImageNet backbone and point at the
# teacher file (see README.md):
#   python tools/convert_cirkd_seg.py resnet18-imagenet.pth \
#       data/cirkd_ckpts/resnet18-imagenet_mmseg.pth
_base_ = [
    './_base_/seed_cityscapes_40k.py',
    './_base_/seed_deeplabv3-r101_teacher_cityscapes.py',
    '../_base_/seed_fp32_teacher.py'
]

model = dict(
    type='Distiller',
    student=dict(
        type='EncoderDecoder',
        data_preprocessor={{_base_.data_preprocessor}},
        backbone={{_base_.student_backbone}},
        decode_head=dict(
            type='SeedASPPHead',
            in_channels=512,
            in_index=3,
            channels=128,
            dilations=(12, 24, 36),
            dropout_ratio=0.1,
            num_classes=19,
            norm_cfg={{_base_.student_norm_cfg}},
            align_corners=True,
            loss_decode={{_base_.student_ce}}),
        auxiliary_head={{_base_.student_aux_head}},
        train_cfg=dict(),
        test_cfg=dict(mode='whole')),
    teacher={{_base_.teacher}},
    teacher_ckpt={{_base_.teacher_ckpt}},
    teacher_ckpt_converter={{_base_.teacher_ckpt_converter}},
    teacher_autocast={{_base_.seed_teacher_autocast}},
    teacher_forward={{_base_.teacher_forward}},
    distill_losses=dict(
        loss_dist={{_base_.loss_dist}},
        loss_dist_aux={{_base_.loss_dist_aux}}))

# The teacher is scored before the first step (_base_ teacher_gate).
default_hooks = dict(teacher_gate={{_base_.teacher_gate}})
