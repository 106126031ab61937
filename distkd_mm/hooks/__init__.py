from .distill_hook import DistillHook
from .student_checkpoint_hook import (StudentCheckpointHook,
                                      add_student_checkpoint_hook)
from .student_ema_hook import StudentEMAHook
from .teacher_gate import TeacherGateHook

__all__ = [
    'DistillHook', 'StudentCheckpointHook', 'StudentEMAHook',
    'TeacherGateHook', 'add_student_checkpoint_hook'
]
