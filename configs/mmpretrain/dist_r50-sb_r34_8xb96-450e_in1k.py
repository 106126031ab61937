# DIST, ResNet-50 "strikes back" -> ResNet-34, the seed's stronger strategy:
# the ResNet-18 row with torchvision's ResNet-34 init (the seed's
# tv_resnet34).
_base_ = './dist_r50-sb_r18_8xb96-450e_in1k.py'

model = dict(student=dict(backbone=dict(depth=34)))
