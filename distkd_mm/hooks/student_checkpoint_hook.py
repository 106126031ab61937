"""Make a checkpoint load into the model it is evaluated with, or fail.

A Distiller checkpoint keeps the student under ``student.``; given to a
plain student config, MMEngine's non-strict ``load_from`` loads no key at
all and the test scores random weights with exit code 0. The hook below
checks, right after the checkpoint is read and before it is loaded, that
its keys fit the model: it takes the ``student.`` weights of a Distiller
checkpoint for a plain student (saying so), prefixes a plain student
checkpoint for a Distiller, and otherwise refuses a checkpoint that fills
fewer than half of the model's weights (same key and shape).
"""
import logging
from typing import Dict

from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.registry import HOOKS

from ..distillers import Distiller
from ..utils.student_layout import (STUDENT_PREFIX, as_distiller_state,
                                    bare_state, student_state)
from ..utils.weights import MIN_LOADED_SHARE, count_fit


@HOOKS.register_module()
class StudentCheckpointHook(Hook):
    """Fit a (Distiller or plain) checkpoint to the model, or refuse it.

    Added by tools/test.py (:func:`add_student_checkpoint_hook`); with the
    libraries' own tools/test.py add ``dict(type='StudentCheckpointHook')``
    to ``custom_hooks``.
    """

    priority = 'VERY_HIGH'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model
        # DDP wrappers and `--tta` (BaseTTAModel) hold the model in `.module`;
        # MMEngine's load unwraps both the same way.
        if is_model_wrapper(model) or isinstance(model, BaseTTAModel):
            model = model.module
        state = checkpoint.get('state_dict', checkpoint)
        # tools/test.py (the libraries' own) sets the config's load_from.
        source = runner.cfg.get('load_from') or 'the checkpoint'
        fitted = fit_state_dict(state, model.state_dict(),
                                isinstance(model, Distiller), source)
        if fitted is not state:
            state.clear()
            state.update(fitted)


def fit_state_dict(state: Dict, model_state: Dict, is_distiller: bool,
                   source: str) -> Dict:
    """``state`` as it should be loaded into a model of ``model_state``.

    Raises:
        RuntimeError: in no layout do at least half of the model's float
            tensors find a tensor of the same key and shape in ``state``
            (the fit rule, :func:`~distkd_mm.utils.weights.count_fit`).
    """
    if _fills_half(state, model_state):
        return state
    if is_distiller:
        fitted = as_distiller_state(state)
        what = 'a plain model checkpoint: loading it as the student'
    else:
        fitted = student_state(state)
        what = (f'a Distiller checkpoint: loading its {len(fitted)} '
                f'`{STUDENT_PREFIX}` tensors into the plain student model')
    if _fills_half(fitted, model_state):
        print_log(
            f'{source} is {what}.', logger='current', level=logging.WARNING)
        return fitted
    hint = 'Check that the config and the checkpoint belong together.'
    if fitted and not is_distiller:
        hint = ('It is a Distiller checkpoint of another student; test it '
                'with its own distiller config, or export its student and '
                f'test that: python tools/export_student.py {source} '
                'student.pth')
    _, total = count_fit(state, model_state)
    raise RuntimeError(
        f'{source} does not fit the model: fewer than '
        f'{MIN_LOADED_SHARE:.0%} of its {total} weights find a tensor of '
        f'the same key and shape (e.g. {sorted(state)[:3]} vs '
        f'{sorted(model_state)[:3]}); evaluating it would score random '
        f'weights. {hint}')


def _fills_half(state: Dict, model_state: Dict) -> bool:
    # MMEngine's load strips a DDP wrapper's prefix from the keys too.
    fitting, total = count_fit(bare_state(state), model_state)
    return fitting > 0 and fitting >= MIN_LOADED_SHARE * total


def add_student_checkpoint_hook(cfg: Config) -> Config:
    """Add :class:`StudentCheckpointHook` to ``cfg`` unless it has one."""
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(h.get('type') == 'StudentCheckpointHook' for h in hooks):
        hooks.append(dict(type='StudentCheckpointHook'))
    cfg.custom_hooks = hooks
    return cfg
