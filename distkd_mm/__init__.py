"""distkd_mm: DIST knowledge distillation for MMEngine-based libraries.

Importing the package registers its losses and distiller in MMEngine's root
registries, where mmpretrain, mmdet and mmseg find them, and lets torch's
safe loader read MMEngine checkpoints (so ``--resume`` works on torch 2.6+).
"""
from . import distillers, losses  # noqa: F401  (registers modules)
from .distillers import Distiller
from .losses import DISTLoss, KDLoss
from .utils import allow_openmmlab_checkpoints
from .version import __version__

allow_openmmlab_checkpoints()

__all__ = ['Distiller', 'DISTLoss', 'KDLoss', '__version__']
