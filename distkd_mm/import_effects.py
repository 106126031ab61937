"""Every change that ``import distkd_mm`` makes to code it does not own.

Besides registering its own names in MMEngine's root registries (new names
only, never ``force=True``: ``Distiller``, ``DISTLoss``, ``KDLoss``,
``DistillHook``, ``StudentCheckpointHook``, ``torchvision_resnet``, ...),
importing the package makes exactly the changes listed in :data:`EFFECTS`
(each with what it replaces, what it does instead and why), all of them in
one call, :func:`apply`, at the end of ``distkd_mm/__init__.py``. They
touch MMEngine's checkpoint loaders for URLs and local paths,
``Runner.resume``, ``FlexibleRunner.resume`` and ``HistoryBuffer``'s
pickling, nothing else.
``distkd_mm.import_effects.EFFECTS``
lists them at runtime; the tests check that list against what an import
really changes in every loaded module.

``torch.serialization``'s process-wide allowlist is left untouched: other
code's ``torch.load(weights_only=True)`` accepts exactly what it did before.
:func:`apply` is idempotent: a second call changes nothing more.

Why at import and not scoped to a run: the loads these guard happen where
no plugin code runs first. The libraries' own ``tools/train.py`` and
``tools/test.py`` (and ``mim train``) import the plugin through the
config's ``custom_imports`` and then hand over to MMEngine's Runner, which
loads ``load_from``, ``resume`` and ``init_cfg=dict(type='Pretrained')``
URLs itself; a run-scoped switch would need a hook listed in every config
(a plain student config with ``custom_imports`` has none), and would still
be a process-wide change while it is on. Applied once at import, it is in
place for every such load, and this module is the one place that says so.
"""
import functools
from typing import Callable, NamedTuple, Tuple

from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader, FlexibleRunner, Runner

from .utils.checkpoint import (HISTORY_METHODS, URL_SCHEMES,
                               load_from_local_weights_only,
                               load_from_url_weights_only,
                               resuming_own_checkpoint)

_STATE_KEYS = ('_log_history', '_count_history', 'max_length')
_SCHEMES = 'mmengine.runner.checkpoint.CheckpointLoader._schemes'
_HISTORY = 'mmengine.logging.history_buffer.HistoryBuffer'


class ImportEffect(NamedTuple):
    """One change that ``import distkd_mm`` makes outside the package.

    Attributes:
        name: Short name.
        targets: The dotted names of what is replaced (a dict entry as
            ``name[key]``), where they are defined.
        change: What the target does afterwards.
        why: What the change protects, or what fails without it.
    """
    name: str
    targets: Tuple[str, ...]
    change: str
    why: str


EFFECTS: Tuple[ImportEffect, ...] = (
    ImportEffect(
        'url_loaders',
        tuple(f'{_SCHEMES}[{scheme!r}]' for scheme in URL_SCHEMES),
        'URL and model-zoo checkpoints load through the URL-keyed download '
        'cache with torch.load(weights_only=True) (utils.checkpoint.'
        'load_untrusted).',
        "MMEngine's own URL loaders unpickle with weights_only=False, which "
        'runs code from the internet.'),
    ImportEffect(
        'local_loader', (f"{_SCHEMES}['']", ),
        'Local checkpoints (load_from, resume) load with weights_only=True '
        "and an allowlist scoped to each load; MMEngine's log buffers load "
        'as inert data outside a resume.',
        'torch >= 2.6 loads with weights_only=True by default, and '
        "MMEngine's own checkpoints (numpy data, log buffers) then fail to "
        'load: resume fails out of the box.'),
    ImportEffect(
        'resume_scope', ('mmengine.runner.runner.Runner.resume',
                         'mmengine.runner._flexible_runner.FlexibleRunner.'
                         'resume'),
        "Runner.resume and FlexibleRunner.resume run inside "
        "utils.checkpoint.resuming_own_checkpoint"
        ", the only scope in which local loads restore MMEngine's "
        'HistoryBuffer log state.',
        'Resume needs the log state; no other load does, so no other load '
        'may build MMEngine objects.'),
    ImportEffect(
        'history_setstate', (f'{_HISTORY}.__setstate__', ),
        "Unpickling a HistoryBuffer restores only the buffer's data; its "
        'statistics methods stay the class\'s own.',
        "A file holding statistics_methods={'mean': ...} would otherwise "
        'replace HistoryBuffer.mean for the whole process.'),
    ImportEffect(
        'history_getstate', (f'{_HISTORY}.__getstate__', ),
        'Pickling a HistoryBuffer leaves out its four built-in statistics '
        'methods (__setstate__ re-registers them).',
        'So checkpoints need no builtins.getattr reference, which would let '
        'a pickle reach any attribute.'),
)


def apply() -> None:
    """Make the changes listed in :data:`EFFECTS`.

    Called once by ``distkd_mm/__init__.py``; calling it again changes
    nothing more.
    """
    CheckpointLoader.register_scheme(
        prefixes=URL_SCHEMES, loader=load_from_url_weights_only, force=True)
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local_weights_only, force=True)
    for runner in (Runner, FlexibleRunner):
        if not getattr(runner.resume, '_distkd_scoped', False):
            runner.resume = _scoped_resume(runner.resume)
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
