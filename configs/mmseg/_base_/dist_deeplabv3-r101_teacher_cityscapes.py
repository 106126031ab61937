# The shared half of the seed's Cityscapes rows: the DeepLabV3-R101 teacher
# from mmseg's model zoo (80.20 mIoU) and the DIST taps. Not a runnable
# config: a leaf lists it after the student's mmseg recipe in `_base_` and
# builds `model` from these variables.
custom_imports = dict(imports=['distkd_mm'], allow_failed_imports=False)

teacher = 'mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024.py'
teacher_ckpt = (
    'https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3/'
    'deeplabv3_r101-d8_512x1024_80k_cityscapes/'
    'deeplabv3_r101-d8_512x1024_80k_cityscapes_20200606_113503-9e428899.pth')
# mmseg's `tensor` mode runs the decode head only; this runs the auxiliary
# head too, and nothing else (no labels, no losses, no resize to the input).
teacher_forward = dict(type='EncoderDecoderHeads')

# DIST on the raw logits at the heads' output resolution (1/8 of the crop):
# every pixel is a row, the 19 classes are the columns. tau = 1, beta =
# gamma = 1; weight 1 for the decode head and 0.4 for the auxiliary FCN head,
# as in the seed. All pixels count, ignore-index (255) ones included: the
# terms never read the labels. `resize_teacher` bilinearly resizes the
# teacher's logits to the student's size (the student's map is never
# resized) when a pair's heads differ in resolution; a different class
# count still fails, naming both taps and shapes.
distill_losses = dict(
    loss_dist=dict(
        student='decode_head.conv_seg',
        teacher='decode_head.conv_seg',
        resize_teacher=True,
        loss=dict(type='DISTLoss', tau=1.0, loss_weight=1.0)),
    loss_dist_aux=dict(
        student='auxiliary_head.conv_seg',
        teacher='auxiliary_head.conv_seg',
        resize_teacher=True,
        loss=dict(type='DISTLoss', tau=1.0, loss_weight=0.4)))
