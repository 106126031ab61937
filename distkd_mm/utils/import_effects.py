"""Every change to other code's global state that ``import distkd_mm`` makes.

Besides registering its own classes and key converters in MMEngine's root
registries (new names only, never ``force=True``: ``Distiller``,
``DISTLoss``, ``KDLoss``, ``DistillHook``, ``StudentCheckpointHook``,
``torchvision_resnet``, ...), importing the package does exactly this, from
:func:`apply_import_effects`, and nothing else:

1. MMEngine's ``CheckpointLoader`` schemes ``http(s)://``,
   ``torchvision://``, ``modelzoo://``, ``open-mmlab://`` and
   ``openmmlab://`` load through
   :func:`~distkd_mm.utils.checkpoint.load_untrusted`: the URL-keyed
   download cache and ``weights_only=True`` (MMEngine's own URL loaders
   unpickle with ``weights_only=False``, which runs code).
2. MMEngine's loader for local paths (``load_from``, ``resume``) becomes
   :func:`~distkd_mm.utils.checkpoint.load_from_local_weights_only`: still
   ``weights_only=True`` (torch's default since 2.6), with an allowlist
   scoped to each load, so the Runner's own checkpoints load again.
3. ``Runner.resume`` runs inside
   :func:`~distkd_mm.utils.checkpoint.resuming_own_checkpoint`: only then do
   local loads restore MMEngine's ``HistoryBuffer`` log state.
4. ``HistoryBuffer.__setstate__`` restores only the buffer's data, never the
   class-level statistics methods: a loaded file cannot replace
   ``HistoryBuffer.mean`` for the whole process.
5. ``HistoryBuffer.__getstate__`` leaves out its four built-in statistics
   methods (``__setstate__`` re-registers them), so checkpoints need no
   ``builtins.getattr`` to load.

``torch.serialization``'s process-wide allowlist is left untouched: other
code's ``torch.load(weights_only=True)`` accepts exactly what it did before.
Each change is idempotent (importing twice changes nothing more).
"""
import functools
from typing import Callable

from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader, Runner

from .checkpoint import (HISTORY_METHODS, URL_SCHEMES,
                         load_from_local_weights_only,
                         load_from_url_weights_only, resuming_own_checkpoint)

_STATE_KEYS = ('_log_history', '_count_history', 'max_length')


def apply_import_effects() -> None:
    """Make the five changes listed in this module's docstring.

    Called once by ``distkd_mm/__init__.py``; calling it again changes
    nothing more.
    """
    CheckpointLoader.register_scheme(
        prefixes=URL_SCHEMES, loader=load_from_url_weights_only, force=True)
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local_weights_only, force=True)
    if not getattr(Runner.resume, '_distkd_scoped', False):
        Runner.resume = _scoped_resume(Runner.resume)
    HistoryBuffer.__setstate__ = _history_setstate
    HistoryBuffer.__getstate__ = _history_getstate


def _scoped_resume(resume: Callable) -> Callable:
    """``Runner.resume`` run inside :func:`resuming_own_checkpoint`."""

    @functools.wraps(resume)
    def wrapper(self, *args, **kwargs):
        with resuming_own_checkpoint():
            return resume(self, *args, **kwargs)

    wrapper._distkd_scoped = True
    return wrapper


def _history_setstate(self, state: dict) -> None:
    """Restore a buffer's data; statistics methods stay the class's own."""
    self._set_default_statistics()
    self.__dict__.update({
        k: v
        for k, v in dict(state).items() if k in _STATE_KEYS
    })


def _history_getstate(self) -> dict:
    """The buffer's data plus custom (non built-in) statistics methods."""
    defaults = {name: getattr(type(self), name) for name in HISTORY_METHODS}
    custom = {
        name: method
        for name, method in self._statistics_methods.items()
        if defaults.get(name) is not method
    }
    state = {
        k: v
        for k, v in self.__dict__.items() if k != 'statistics_methods'
    }
    if custom:
        state['statistics_methods'] = custom
    return state
