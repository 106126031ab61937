# DIST, ResNet-34 -> ResNet-18 with the seed's own teacher weights:
# torchvision's ResNet-34 (IMAGENET1K_V1, 73.31 top-1), whose keys are
# remapped to mmpretrain's ResNet at load time. Any other torchvision ResNet
# teacher works the same way, e.g. for R50 -> R18:
#   --cfg-options model.teacher_ckpt=torchvision://resnet50
#     model.teacher_ckpt_converter=torchvision_resnet
_base_ = './dist_r34-mmpretrain_r18_8xb32-100e_in1k.py'

custom_imports = dict(
    imports=['distkd_mm', 'distkd_mm.models'], allow_failed_imports=False)

model = dict(
    teacher_ckpt='torchvision://resnet34',
    teacher_ckpt_converter='torchvision_resnet')
