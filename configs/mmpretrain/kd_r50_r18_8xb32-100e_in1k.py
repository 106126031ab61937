# KD (T=4) baseline of dist_r50_r18_8xb32-100e_in1k.py (the seed's protocol:
# same teacher, data and schedule): the KD change of _base_/kd_logits.py on its
# DIST sibling.
_base_ = ['./dist_r50_r18_8xb32-100e_in1k.py', './_base_/kd_logits.py']

model = {{_base_.model_kd}}
