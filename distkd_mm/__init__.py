"""distkd_mm: DIST knowledge distillation for MMEngine-based libraries.

Importing the package registers its losses, distiller, hooks, models and
optimizer pieces in MMEngine's root registries, where mmpretrain, mmdet and
mmseg find them. It also makes every checkpoint load data-only: torch's safe
loader learns to read MMEngine checkpoints (so ``--resume`` works on torch
2.6+), and MMEngine's URL and model-zoo loaders go through the same safe
path.
"""
from . import distillers, hooks, losses, models, optim  # noqa: F401
from .distillers import Distiller
from .hooks import DistillHook
from .losses import DISTLoss, KDLoss
from .utils import install_safe_loading
from .version import __version__

install_safe_loading()

__all__ = ['Distiller', 'DistillHook', 'DISTLoss', 'KDLoss', '__version__']
