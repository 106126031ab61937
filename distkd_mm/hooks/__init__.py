from .distill_hook import DistillHook
from .student_ema_hook import StudentEMAHook

__all__ = ['DistillHook', 'StudentEMAHook']
