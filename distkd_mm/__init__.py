"""distkd_mm: DIST knowledge distillation for MMEngine-based libraries.

Importing the package registers its losses, distiller, hooks, models and
optimizer pieces in MMEngine's root registries, where mmpretrain, mmdet and
mmseg find them, and then makes the changes to MMEngine listed in
:mod:`distkd_mm.import_effects` (``EFFECTS``), in the one call at the end of
this file: MMEngine's checkpoint loaders go through a weights-only,
URL-keyed safe path, and resume restores log state only while resuming.
"""
from . import distillers, hooks, losses, models, optim  # noqa: F401
from .distillers import Distiller
from .hooks import DistillHook
from .import_effects import apply as apply_import_effects
from .losses import DISTLoss, KDLoss
from .version import __version__

apply_import_effects()  # the one call: see distkd_mm/import_effects.py

__all__ = ['Distiller', 'DistillHook', 'DISTLoss', 'KDLoss', '__version__']
