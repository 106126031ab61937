# The shared half of the seed's Cityscapes rows: the DeepLabV3-R101 teacher
# from mmseg's model zoo and the DIST terms of ./dist_heads.py.
# Not a runnable config: a leaf lists it after the student's mmseg recipe in
# `_base_` and builds `model` from these variables.
_base_ = './dist_heads.py'

teacher = 'mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024.py'
teacher_ckpt = (
    'https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3/'
    'deeplabv3_r101-d8_512x1024_80k_cityscapes/'
    'deeplabv3_r101-d8_512x1024_80k_cityscapes_20200606_113503-9e428899.pth')
