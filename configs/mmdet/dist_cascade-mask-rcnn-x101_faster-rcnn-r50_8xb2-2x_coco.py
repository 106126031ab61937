# DIST, Cascade Mask R-CNN ResNeXt-101-64x4d -> Faster R-CNN ResNet-50 on COCO
# (the seed's two-stage row; its numbers: configs/seed_results.yml). The
# student recipe is mmdet's Faster R-CNN R50 2x (SGD lr 0.02, steps at 16/22, 8
# GPUs x 2 images); the teacher is mmdet's Cascade Mask R-CNN X101-64x4d 20e
# with its model-zoo weights. The teacher's RoI forward and the DIST term (RoI
# classifier logits, the teacher's first stage) are in
# _base_/dist_two_stage.py.
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py',
    './_base_/dist_two_stage.py', '../_base_/seed_fp32_teacher.py'
]

model = dict(
    _delete_=True,
    type='Distiller',
    student={{_base_.model}},
    teacher='mmdet::cascade_rcnn/cascade-mask-rcnn_x101-64x4d_fpn_20e_coco.py',
    teacher_ckpt='https://download.openmmlab.com/mmdetection/v2.0/'
    'cascade_rcnn/cascade_mask_rcnn_x101_64x4d_fpn_20e_coco/'
    'cascade_mask_rcnn_x101_64x4d_fpn_20e_coco_20200512_161033-bdb5126a.pth',
    teacher_autocast={{_base_.seed_teacher_autocast}},
    teacher_forward={{_base_.teacher_forward}},
    distill_losses=dict(loss_dist={{_base_.loss_dist}}))

# The seed's schedule is mmdet's 2x with its base lr 0.02.
optim_wrapper = dict(optimizer=dict(lr=0.02))

# The teacher is scored before the first step (_base_ teacher_gate).
default_hooks = dict(teacher_gate={{_base_.teacher_gate}})
