# The teacher's precision of every seed-protocol config, stated once.
# The seed's teachers ran in fp32, and so do these configs' teachers
# (`teacher_autocast=None`), whatever the Distiller's default (`'auto'`:
# bf16 on GPUs, kept by the mmseg-recipe variants and the Swin-T row): bf16
# moved the DIST loss of a trained student by 3.2e-3 (up to 9e-3 per batch)
# relative in tools/teacher_precision.py (docs/speed.md#teacher-precision).
#
# A config lists this file in `_base_` and sets
# `model = dict(..., teacher_autocast={{_base_.seed_teacher_autocast}})`;
# a config that inherits it overrides it as any other model option, e.g.
# `model = dict(teacher_autocast='bf16')` or
# `--cfg-options model.teacher_autocast=bf16`.
seed_teacher_autocast = None
