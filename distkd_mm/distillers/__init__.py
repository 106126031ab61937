from .distiller import Distiller
from .recorder import Recorder
from .seg_heads import EncoderDecoderHeads
from .teacher import build_teacher

__all__ = ['Distiller', 'EncoderDecoderHeads', 'Recorder', 'build_teacher']
