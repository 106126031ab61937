# DIST, PSPNet-R18 <- DeepLabV3-R101 on Cityscapes 512x1024 (the seed's
# row; its numbers: configs/seed_results.yml). The student recipe is mmseg's
# own 80k one (4 GPUs x 2 images, SGD 0.01, poly); the teacher and the DIST
# taps (decode head weight 1, auxiliary head 0.4) are in the _base_ file.
_base_ = [
    'mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    './_base_/dist_deeplabv3-r101_teacher_cityscapes.py'
]

model = dict(
    _delete_=True,
    type='Distiller',
    student={{_base_.model}},
    teacher={{_base_.teacher}},
    teacher_ckpt={{_base_.teacher_ckpt}},
    teacher_forward={{_base_.teacher_forward}},
    distill_losses=dict(
        loss_dist={{_base_.loss_dist}},
        loss_dist_aux={{_base_.loss_dist_aux}}))

# The teacher is scored before the first step (_base_ teacher_gate).
default_hooks = dict(teacher_gate={{_base_.teacher_gate}})
