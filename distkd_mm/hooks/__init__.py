from .distill_hook import DistillHook
from .student_checkpoint_hook import (StudentCheckpointHook,
                                      add_student_checkpoint_hook)
from .student_ema_hook import StudentEMAHook

__all__ = [
    'DistillHook', 'StudentCheckpointHook', 'StudentEMAHook',
    'add_student_checkpoint_hook'
]
