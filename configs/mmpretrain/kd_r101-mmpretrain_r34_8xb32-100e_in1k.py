# KD (T=4) baseline of dist_r101-mmpretrain_r34_8xb32-100e_in1k.py, the variant
# with mmpretrain's teacher (not the seed's protocol): the KD change of
# _base_/kd_logits.py on its DIST sibling.
_base_ = [
    './dist_r101-mmpretrain_r34_8xb32-100e_in1k.py', './_base_/kd_logits.py'
]

model = {{_base_.model_kd}}
