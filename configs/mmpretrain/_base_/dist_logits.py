# DIST on the classifier's logits (what `head` of both models returns: the
# logits for every mmpretrain head, also those without an `fc`, such as
# ViT's and DeiT's), tau 1, weight 2 beside the student's CE: the seed's
# ImageNet term, and the `cls` preset of `--teacher`
# (distkd_mm/apis/attach.py reads this file). Not a runnable
# config: a config lists it in `_base_` and sets
# `distill_losses=dict(loss_dist={{_base_.loss_dist}})`.
custom_imports = dict(imports=['distkd_mm'], allow_failed_imports=False)

loss_dist = dict(
    student='head',
    teacher='head',
    loss=dict(type='DISTLoss', tau=1.0, loss_weight=2.0))

# The teacher gate (distkd_mm/hooks/teacher_gate.py): the teacher is scored
# on 10 validation batches before the first step, and a teacher near chance
# stops the run. A leaf puts it in `default_hooks` (named, so that
# `--cfg-options default_hooks.teacher_gate.enable=False` or
# `...teacher_gate.max_eval_batches=N` reach it).
teacher_gate = dict(type='TeacherGateHook', max_eval_batches=10)
