# Baseline student: the teacher's architecture at 1/8 of the width
# (ResNet-18 with 4 base channels), trained alone with cross-entropy.
_base_ = './digits_teacher.py'

model = dict(
    backbone=dict(stem_channels=4, base_channels=4), head=dict(in_channels=32))
# The seed trains its small CIFAR students (MobileNetV2, ShuffleNets) at
# lr 0.01 instead of 0.05; this tiny student is as fragile. The baseline,
# DIST and KD students all inherit this schedule.
optim_wrapper = dict(optimizer=dict(lr=0.01))
