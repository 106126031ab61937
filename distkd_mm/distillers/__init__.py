from .connectors import FPNAdapter
from .distiller import Distiller
from .recorder import Recorder
from .seg_heads import EncoderDecoderHeads
from .teacher import build_teacher
from .term import DistillTerm
from .two_stage import RoITeacherForward

__all__ = [
    'DistillTerm', 'Distiller', 'EncoderDecoderHeads', 'FPNAdapter',
    'Recorder', 'RoITeacherForward', 'build_teacher'
]
