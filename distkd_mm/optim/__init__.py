"""Optimisation pieces of the seed's recipes that MMEngine lacks.

Importing this package registers them: ``RMSpropTF`` in ``OPTIMIZERS``
(timm's TensorFlow-style RMSprop) and ``FractionalStepLR`` in
``PARAM_SCHEDULERS``.
"""
from .rmsprop_tf import build_rmsprop_tf
from .schedulers import FractionalStepLR

__all__ = ['FractionalStepLR', 'build_rmsprop_tf']
