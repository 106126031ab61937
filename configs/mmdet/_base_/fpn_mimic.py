# The seed's "+mimic" term, shared by both detectors: each of the 5 student
# FPN levels passes through its own trainable 1x1 conv (256 -> 256, bias) and
# is compared with the teacher's level by MSE (mean); summed, weight 1.
# Also the `+mimic` presets of `--teacher` (distkd_mm/apis/attach.py reads
# this file and sets the adapter's channels and levels from the necks).
# Not a runnable config: a leaf lists it in `_base_` after its DIST sibling.
loss_mimic = dict(
    student='neck',
    teacher='neck',
    connector=dict(
        type='FPNAdapter', in_channels=256, out_channels=256, num_levels=5),
    loss=dict(type='MimicLoss'))
