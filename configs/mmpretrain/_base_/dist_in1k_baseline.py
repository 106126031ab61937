# The seed's ImageNet "baseline setting" (resnet_dist.yaml) around a
# ResNet-18 student: 100 epochs, SGD lr 0.1 momentum 0.9 Nesterov, weight
# decay 1e-4 on conv/fc weights only (not on norm layers or biases), lr x0.1
# at epochs 30/60/90, 32 images x 8 GPUs, RandomResizedCrop 224 + flip.
# DIST on the logits: tau 1, weight 2, beside the student's CE (weight 1).
# Leaves set the teacher (and change the student where it is not R18).
_base_ = 'mmpretrain::resnet/resnet18_8xb32_in1k.py'

custom_imports = dict(
    imports=['distkd_mm', 'distkd_mm.models'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='Distiller',
    student={{_base_.model}},
    teacher=None,
    teacher_ckpt=None,
    distill_losses=dict(
        loss_dist=dict(
            student='head.fc',
            teacher='head.fc',
            loss=dict(type='DISTLoss', tau=1.0, loss_weight=2.0))))

optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
