# Variant of dist_r34_r18_8xb32-100e_in1k.py (not the seed's protocol): the
# teacher is mmpretrain's ResNet-34 with its model-zoo weights (73.62 top-1,
# stronger than the seed's torchvision teacher, 73.31).
_base_ = './dist_r34_r18_8xb32-100e_in1k.py'

model = dict(
    teacher_ckpt='https://download.openmmlab.com/mmclassification/v0/resnet/'
    'resnet34_8xb32_in1k_20210831-f257d4e6.pth',
    teacher_ckpt_converter=None)
