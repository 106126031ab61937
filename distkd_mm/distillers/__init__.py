from .connectors import FPNAdapter
from .distiller import Distiller
from .recorder import Recorder
from .teacher import build_teacher
from .teacher_forward import EncoderDecoderHeads, RoITeacherForward
from .term import DistillTerm

__all__ = [
    'DistillTerm', 'Distiller', 'EncoderDecoderHeads', 'FPNAdapter',
    'Recorder', 'RoITeacherForward', 'build_teacher'
]
