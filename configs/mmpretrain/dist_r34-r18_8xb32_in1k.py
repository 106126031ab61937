# DIST, ResNet-34 -> ResNet-18 on ImageNet (the seed's baseline setting).
# The student recipe is mmpretrain's own ResNet-18 one (100 epochs, SGD 0.1,
# steps at 30/60/90, 8 GPUs x 32 images); the teacher is mmpretrain's
# ResNet-34 with its model-zoo weights (73.62 top-1).
_base_ = 'mmpretrain::resnet/resnet18_8xb32_in1k.py'

custom_imports = dict(imports=['distkd_mm'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='Distiller',
    student={{_base_.model}},
    teacher='mmpretrain::resnet/resnet34_8xb32_in1k.py',
    teacher_ckpt='https://download.openmmlab.com/mmclassification/v0/resnet/'
    'resnet34_8xb32_in1k_20210831-f257d4e6.pth',
    # DIST on the logits, tau 1, weight 2 against the CE weight 1.
    distill_losses=dict(
        loss_dist=dict(
            student='head.fc',
            teacher='head.fc',
            loss=dict(type='DISTLoss', tau=1.0, loss_weight=2.0))))
