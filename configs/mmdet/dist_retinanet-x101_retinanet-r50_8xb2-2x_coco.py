# DIST, RetinaNet ResNeXt-101-64x4d -> RetinaNet ResNet-50 on COCO (the seed's
# single-stage row; its numbers: configs/seed_results.yml). The student recipe
# is mmdet's own RetinaNet R50 2x one (SGD lr 0.01, steps at 16/22, 8 GPUs x 2
# images); the teacher is mmdet's RetinaNet X101-64x4d 1x with its model-zoo
# weights. The teacher runs in `tensor` mode: backbone, neck and head forward
# only, no anchor assignment and no losses. The DIST term (sigmoid scores of
# the classification conv) is in _base_/dist_retinanet.py.
_base_ = [
    'mmdet::retinanet/retinanet_r50_fpn_2x_coco.py',
    './_base_/dist_retinanet.py', '../_base_/seed_fp32_teacher.py'
]

model = dict(
    _delete_=True,
    type='Distiller',
    student={{_base_.model}},
    teacher='mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py',
    teacher_ckpt='https://download.openmmlab.com/mmdetection/v2.0/retinanet/'
    'retinanet_x101_64x4d_fpn_1x_coco/'
    'retinanet_x101_64x4d_fpn_1x_coco_20200130-366f5af1.pth',
    teacher_autocast={{_base_.seed_teacher_autocast}},
    distill_losses=dict(loss_dist={{_base_.loss_dist}}))

# The seed trains without gradient clipping, at lr 0.01.
optim_wrapper = dict(clip_grad=None, optimizer=dict(lr=0.01))

# The teacher is scored before the first step (_base_ teacher_gate).
default_hooks = dict(teacher_gate={{_base_.teacher_gate}})
