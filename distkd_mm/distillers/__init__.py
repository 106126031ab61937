from .distiller import Distiller
from .recorder import Recorder
from .teacher import build_teacher

__all__ = ['Distiller', 'Recorder', 'build_teacher']
