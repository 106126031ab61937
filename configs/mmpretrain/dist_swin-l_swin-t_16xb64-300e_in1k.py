# DIST, Swin-L -> Swin-T. The seed ran this row in the official Swin code,
# i.e. with Swin's own recipe (AdamW, 300 epochs, 1024 images, mixup/cutmix,
# label smoothing, stochastic depth), which is mmpretrain's swin-tiny recipe
# used here; DIST on the logits with tau 1, weight 2 as in the seed's other
# ImageNet rows (the seed does not publish this row's loss settings).
_base_ = 'mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py'

custom_imports = dict(
    imports=['distkd_mm', 'distkd_mm.models'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='Distiller',
    student={{_base_.model}},
    teacher='mmpretrain::swin_transformer/swin-large_16xb64_in1k.py',
    teacher_ckpt='https://download.openmmlab.com/mmclassification/v0/'
    'swin-transformer/convert/'
    'swin_large_patch4_window7_224_22kto1k-5f0996db.pth',
    distill_losses=dict(
        loss_dist=dict(
            student='head.fc',
            teacher='head.fc',
            loss=dict(type='DISTLoss', tau=1.0, loss_weight=2.0))))
