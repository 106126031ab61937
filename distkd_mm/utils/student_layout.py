"""Where a Distiller checkpoint keeps its student, and how to take it out.

A Distiller's state dict holds the student under ``student.`` (connectors
under their own names; the teacher is not saved). With an EMA of the
student (:class:`~distkd_mm.hooks.StudentEMAHook`) MMEngine's convention
applies: ``state_dict`` holds the averaged weights, the ones validation
scored, and ``ema_state_dict`` the raw trained ones, keyed as the averaged
model holds them (``module.`` + the student's key, plus its ``steps``
counter). A plain model checkpoint has the student's keys as they are.

Everything that reads or writes these keys (the checkpoint-fit hook, the
Distiller's load pre-hook, the EMA hook, tools/export_student.py) asks
this module, so the layout is written down once.
"""
from collections import OrderedDict
from typing import Any, Dict, Mapping, Optional

# The Distiller's attribute holding the student, as its state dict keys
# begin.
STUDENT_PREFIX = 'student.'
# MMEngine's EMAHook saves the averaged model's state under this key.
EMA_STATE = 'ema_state_dict'
# BaseAveragedModel wraps the averaged model as its ``module``.
AVERAGED_PREFIX = 'module.'
# What a DDP wrapper adds in front of every key (MMEngine's loads strip
# it too: the default ``revise_keys``).
WRAPPER_PREFIX = 'module.'

DISTILLER = 'distiller'
DISTILLER_EMA = 'distiller with student EMA'
PLAIN = 'plain model'


def bare_key(key: str) -> str:
    """``key`` without a DDP wrapper's ``module.``."""
    return key[len(WRAPPER_PREFIX):] if key.startswith(WRAPPER_PREFIX) \
        else key


def bare_state(state: Mapping[str, Any]) -> 'OrderedDict[str, Any]':
    """``state`` with its keys as MMEngine's load reads them (a DDP
    wrapper's ``module.`` removed)."""
    return OrderedDict((bare_key(k), v) for k, v in state.items())


def as_student_state(state: Mapping[str, Any]) -> 'OrderedDict[str, Any]':
    """The student's weights in a Distiller's or a plain model's state
    dict, keyed as the student's own."""
    return student_state(state) if is_distiller_state(state) else \
        bare_state(state)


def is_distiller_state(state: Mapping[str, Any]) -> bool:
    """Whether ``state`` is a Distiller's (it holds ``student.`` keys)."""
    return any(bare_key(k).startswith(STUDENT_PREFIX) for k in state)


def student_state(state: Mapping[str, Any]) -> 'OrderedDict[str, Any]':
    """The student's entries of a Distiller state dict, keyed as the
    student's own (prefix removed); empty for a plain one."""
    n = len(STUDENT_PREFIX)
    return OrderedDict((bare_key(k)[n:], v) for k, v in state.items()
                       if bare_key(k).startswith(STUDENT_PREFIX))


def as_distiller_state(state: Mapping[str, Any]) -> 'OrderedDict[str, Any]':
    """A plain student state dict keyed as a Distiller's student."""
    return OrderedDict(
        (STUDENT_PREFIX + bare_key(k), v) for k, v in state.items())


def state_dict_of(checkpoint: Mapping[str, Any]) -> Mapping[str, Any]:
    """The model weights of an MMEngine checkpoint (or a bare state
    dict)."""
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, Mapping):
        raise TypeError('`checkpoint` should hold a state dict, but its '
                        f'`state_dict` is a {type(state).__name__}.')
    return state


def checkpoint_layout(checkpoint: Mapping[str, Any]) -> str:
    """Which layout ``checkpoint`` has: :data:`DISTILLER_EMA`,
    :data:`DISTILLER` or :data:`PLAIN`."""
    if not is_distiller_state(state_dict_of(checkpoint)):
        return PLAIN
    return DISTILLER_EMA if EMA_STATE in checkpoint else DISTILLER


def ema_model_key(ema_key: str, prefix: str) -> Optional[str]:
    """The ``state_dict`` key whose average ``ema_state_dict`` keeps under
    ``ema_key``; None for the averaged model's own entries (``steps``).

    Args:
        ema_key: A key of ``ema_state_dict``.
        prefix: Where the averaged module sits in the saved model:
            :data:`STUDENT_PREFIX` for a Distiller's student, ``''`` for
            a whole model.
    """
    if not ema_key.startswith(AVERAGED_PREFIX):
        return None
    return prefix + ema_key[len(AVERAGED_PREFIX):]


def student_weights(checkpoint: Mapping[str, Any],
                    ema: bool = True) -> 'OrderedDict[str, Any]':
    """The student of a Distiller checkpoint, keyed as the student's own.

    Args:
        checkpoint: What a Distiller run saved.
        ema: The weights validation scored (the averaged ones where an EMA
            of the student ran); False for the raw trained weights, which
            an EMA run keeps in ``ema_state_dict``.

    Raises:
        ValueError: ``checkpoint`` holds no student (a plain model's).
    """
    layout = checkpoint_layout(checkpoint)
    if layout == PLAIN:
        raise ValueError(
            '`checkpoint` should come from a Distiller run (keys starting '
            f'with "{STUDENT_PREFIX}"), but it has none; it may already be '
            'a plain model checkpoint, which the student\'s config loads '
            'as it is.')
    student = student_state(state_dict_of(checkpoint))
    if ema or layout != DISTILLER_EMA:
        return student
    raw = OrderedDict()
    for key, value in checkpoint[EMA_STATE].items():
        model_key = ema_model_key(key, '')
        if model_key is not None:
            raw[model_key] = value
    # MMEngine's own EMAHook on a whole Distiller averages every key,
    # student. included; StudentEMAHook averages the student alone.
    if is_distiller_state(raw):
        raw = student_state(raw)
    student.update((k, v) for k, v in raw.items() if k in student)
    return student


def export_student(checkpoint: Mapping[str, Any],
                   ema: bool = True) -> Dict[str, Any]:
    """A plain checkpoint of the student of a Distiller checkpoint.

    The student's own config loads it strictly with ``load_from``:
    connectors, the optimizer state and the EMA record are dropped; the
    meta is kept and says where it came from.

    Args:
        checkpoint: What a Distiller run saved.
        ema: See :func:`student_weights`.

    Raises:
        ValueError: ``checkpoint`` holds no student (a plain model's).
    """
    layout = checkpoint_layout(checkpoint)
    student = student_weights(checkpoint, ema)
    meta = dict(checkpoint.get('meta') or {})
    meta['exported_from'] = 'distkd_mm Distiller'
    if layout == DISTILLER_EMA:
        meta['student_weights'] = 'ema' if ema else 'raw'
    return dict(meta=meta, state_dict=student)
