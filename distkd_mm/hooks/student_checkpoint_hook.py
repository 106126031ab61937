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
import re
from typing import Dict

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.registry import HOOKS

from ..distillers import Distiller

PREFIX = 'student.'
# Fewer fitting weights than this share of the model's: it would be
# evaluated mostly at random (integer BatchNorm counters do not count).
MIN_SHARE = 0.5


def _bare(key: str) -> str:
    # MMEngine's load strips this prefix too (revise_keys' default).
    return re.sub(r'^module\.', '', key)


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
        shapes = {
            k: tuple(v.shape)
            for k, v in model.state_dict().items()
            if isinstance(v, torch.Tensor) and v.is_floating_point()
        }
        fitted = fit_state_dict(state, shapes, isinstance(model, Distiller),
                                source)
        if fitted is not state:
            state.clear()
            state.update(fitted)


def fit_state_dict(state: Dict, model_shapes: Dict[str, tuple],
                   is_distiller: bool, source: str) -> Dict:
    """``state`` as it should be loaded into a model whose state dict has
    ``model_shapes`` (key -> shape).

    Raises:
        RuntimeError: in no layout do at least half of the model's weights
            find a tensor of the same key and shape in ``state``.
    """
    if _fits(state, model_shapes):
        return state
    if is_distiller:
        fitted = {PREFIX + _bare(k): v for k, v in state.items()}
        what = 'a plain model checkpoint: loading it as the student'
    else:
        fitted = {
            _bare(k)[len(PREFIX):]: v
            for k, v in state.items() if _bare(k).startswith(PREFIX)
        }
        what = (f'a Distiller checkpoint: loading its {len(fitted)} '
                '`student.` tensors into the plain student model')
    if _fits(fitted, model_shapes):
        print_log(
            f'{source} is {what}.', logger='current', level=logging.WARNING)
        return fitted
    hint = 'Check that the config and the checkpoint belong together.'
    if fitted and not is_distiller:
        hint = ('It is a Distiller checkpoint of another student; test it '
                'with its own distiller config, or export its student and '
                f'test that: python tools/export_student.py {source} '
                'student.pth')
    raise RuntimeError(
        f'{source} does not fit the model: fewer than {MIN_SHARE:.0%} of its '
        f'{len(model_shapes)} weights find a tensor of the same key and '
        f'shape (e.g. {sorted(state)[:3]} vs {sorted(model_shapes)[:3]}); '
        f'evaluating it would score random weights. {hint}')


def _fits(state: Dict, model_shapes: Dict[str, tuple]) -> bool:
    """Whether ``state`` fills at least half of the model's weights."""
    fitting = sum(
        isinstance(v, torch.Tensor) and v.is_floating_point()
        and tuple(v.shape) == model_shapes.get(_bare(k))
        for k, v in state.items())
    return fitting >= MIN_SHARE * len(model_shapes) and fitting > 0


def add_student_checkpoint_hook(cfg: Config) -> Config:
    """Add :class:`StudentCheckpointHook` to ``cfg`` unless it has one."""
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(h.get('type') == 'StudentCheckpointHook' for h in hooks):
        hooks.append(dict(type='StudentCheckpointHook'))
    cfg.custom_hooks = hooks
    return cfg
