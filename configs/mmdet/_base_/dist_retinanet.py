# The seed's single-stage DIST term, and the `retinanet` preset of
# `--teacher` (distkd_mm/apis/attach.py reads this file): DIST on the
# classification conv of the shared head, sigmoid scores (anchors x classes
# per location), every location a row. The head runs once per FPN level;
# the level terms are summed into this one key, each with weight 1. No
# temperature. Not a runnable config: a leaf lists it in `_base_` after the
# student's mmdet recipe.
custom_imports = dict(imports=['distkd_mm'], allow_failed_imports=False)

loss_dist = dict(
    student='bbox_head.retina_cls',
    teacher='bbox_head.retina_cls',
    loss=dict(type='DISTLoss', use_sigmoid=True))

# The teacher gate (distkd_mm/hooks/teacher_gate.py): the teacher is scored
# on 10 validation batches before the first step, and a teacher near chance
# stops the run. A leaf puts it in `default_hooks` (named, so that
# `--cfg-options default_hooks.teacher_gate.enable=False` or
# `...teacher_gate.max_eval_batches=N` reach it).
teacher_gate = dict(type='TeacherGateHook', max_eval_batches=10)
