# Variant of dist_r152_r34_8xb32-100e_in1k.py (not the seed's protocol): the
# teacher is mmpretrain's ResNet-152 with its model-zoo weights (stronger than
# the seed's torchvision teacher; top-1 of both: configs/seed_results.yml).
_base_ = './dist_r152_r34_8xb32-100e_in1k.py'

model = dict(
    teacher_ckpt='https://download.openmmlab.com/mmclassification/v0/resnet/'
    'resnet152_8xb32_in1k_20210901-4d7582fa.pth',
    teacher_ckpt_converter=None)
# mmpretrain's teachers were trained on its own pipeline (mmcv's cv2
# resizing): this variant keeps it; the seed config resizes with PIL.
train_dataloader = dict(
    dataset=dict(pipeline={{_base_.mmpretrain_train_pipeline}}))
val_dataloader = dict(
    dataset=dict(pipeline={{_base_.mmpretrain_test_pipeline}}))
test_dataloader = val_dataloader
