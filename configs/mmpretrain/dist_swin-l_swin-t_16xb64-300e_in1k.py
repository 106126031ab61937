# DIST, Swin-L -> Swin-T. The seed publishes no recipe for this row: it ran
# it in the official Swin code, whose settings it does not release, so every
# setting here is ours, not the seed's. We take Swin's own recipe as
# mmpretrain ships it (swin-tiny_16xb64_in1k: AdamW, 300 epochs, 1024 images,
# mixup/cutmix, label smoothing, stochastic depth) plus DIST on the logits
# with tau 1, weight 2 as in the seed's other ImageNet rows, and keep the
# best checkpoint by top-1.
_base_ = [
    'mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py',
    './_base_/dist_logits.py'
]

model = dict(
    _delete_=True,
    type='Distiller',
    student={{_base_.model}},
    teacher='mmpretrain::swin_transformer/swin-large_16xb64_in1k.py',
    teacher_ckpt='https://download.openmmlab.com/mmclassification/v0/'
    'swin-transformer/convert/'
    'swin_large_patch4_window7_224_22kto1k-5f0996db.pth',
    distill_losses=dict(loss_dist={{_base_.loss_dist}}))

default_hooks = dict(
    teacher_gate={{_base_.teacher_gate}},
    checkpoint=dict(
        type='CheckpointHook',
        interval=1,
        save_best='accuracy/top1',
        rule='greater'))
