"""distkd_mm: DIST knowledge distillation for MMEngine-based libraries.

Importing the package registers its losses, distiller, hooks, models and
optimizer pieces in MMEngine's root registries, where mmpretrain, mmdet and
mmseg find them. Its other global changes (MMEngine's checkpoint loaders go
through a weights-only, URL-keyed safe path; resume restores log state only
while resuming) are made and listed in :mod:`distkd_mm.utils.import_effects`.
"""
from . import distillers, hooks, losses, models, optim  # noqa: F401
from .distillers import Distiller
from .hooks import DistillHook
from .losses import DISTLoss, KDLoss
from .utils import apply_import_effects
from .version import __version__

apply_import_effects()

__all__ = ['Distiller', 'DistillHook', 'DISTLoss', 'KDLoss', '__version__']
