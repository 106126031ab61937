# The seed's two-stage DIST term, and the `two-stage` preset of `--teacher`
# (distkd_mm/apis/attach.py reads this file, and taps a plain two-stage
# teacher's one bbox head at the student's path). The teacher runs backbone
# + neck, pools its features at the student's sampled RoIs and applies its
# first-stage bbox head: one teacher row per student RoI. No teacher RPN,
# mask head, later stages or losses. DIST on the RoI classifier logits:
# softmax over the classes plus background, every sampled RoI a row. Weight
# 1, no temperature. Not a runnable config: a leaf lists it in `_base_`
# after the student's mmdet recipe.
custom_imports = dict(imports=['distkd_mm'], allow_failed_imports=False)

teacher_forward = dict(type='RoITeacherForward')
loss_dist = dict(
    student='roi_head.bbox_head.fc_cls',
    teacher='roi_head.bbox_head.0.fc_cls',
    loss=dict(type='DISTLoss'))

# The teacher gate (distkd_mm/hooks/teacher_gate.py): the teacher is scored
# on 10 validation batches before the first step, and a teacher near chance
# stops the run. A leaf puts it in `default_hooks` (named, so that
# `--cfg-options default_hooks.teacher_gate.enable=False` or
# `...teacher_gate.max_eval_batches=N` reach it).
teacher_gate = dict(type='TeacherGateHook', max_eval_batches=10)
