# The seed's Cityscapes DIST terms, and the `seg` preset of `--teacher`
# (distkd_mm/apis/attach.py reads this file, and keeps the auxiliary term
# only when both models have an auxiliary head). mmseg's `tensor` mode runs
# the decode head only; `teacher_forward` runs the auxiliary head too, and
# nothing else (no labels, no losses, no resize to the input).
#
# DIST on the raw logits at the heads' output resolution (1/8 of the crop):
# every pixel is a row, the 19 classes are the columns. tau = 1, beta =
# gamma = 1; weight 1 for the decode head and 0.4 for the auxiliary FCN head,
# as in the seed. All pixels count, ignore-index (255) ones included: the
# terms never read the labels. `resize_teacher` bilinearly resizes the
# teacher's logits to the student's size (the student's map is never
# resized) when a pair's heads differ in resolution; a different class
# count still fails, naming both taps and shapes. Not a runnable config.
custom_imports = dict(imports=['distkd_mm'], allow_failed_imports=False)

teacher_forward = dict(type='EncoderDecoderHeads')
loss_dist = dict(
    student='decode_head.conv_seg',
    teacher='decode_head.conv_seg',
    resize_teacher=True,
    loss=dict(type='DISTLoss', tau=1.0, loss_weight=1.0))
loss_dist_aux = dict(
    student='auxiliary_head.conv_seg',
    teacher='auxiliary_head.conv_seg',
    resize_teacher=True,
    loss=dict(type='DISTLoss', tau=1.0, loss_weight=0.4))

# The teacher gate (distkd_mm/hooks/teacher_gate.py): the teacher is scored
# on 10 validation batches before the first step, and a teacher near chance
# stops the run. A leaf puts it in `default_hooks` (named, so that
# `--cfg-options default_hooks.teacher_gate.enable=False` or
# `...teacher_gate.max_eval_batches=N` reach it).
teacher_gate = dict(type='TeacherGateHook', max_eval_batches=10)
