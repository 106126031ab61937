# DIST on the classifier's logits (`head.fc` of both models), tau 1, weight
# 2 beside the student's CE: the seed's ImageNet term, and the `cls` preset
# of `--teacher` (distkd_mm/apis/attach.py reads this file). Not a runnable
# config: a config lists it in `_base_` and sets
# `distill_losses=dict(loss_dist={{_base_.loss_dist}})`.
custom_imports = dict(imports=['distkd_mm'], allow_failed_imports=False)

loss_dist = dict(
    student='head.fc',
    teacher='head.fc',
    loss=dict(type='DISTLoss', tau=1.0, loss_weight=2.0))
