"""Build the frozen teacher from a model dict, a config file or ``pkg::``."""
import copy
import logging
from typing import Callable, Optional, Tuple, Union

from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.registry import MODELS, DefaultScope
from torch import nn

from ..utils.config_paths import package_config_weights, resolve_config_path
from ..utils.convert import get_converter
from ..utils.weights import load_weights

TeacherCfg = Union[dict, ConfigDict, str]


def teacher_model_cfg(teacher: TeacherCfg) -> tuple:
    """Return the teacher's model dict and the scope to build it in.

    A config file carries its own ``default_scope`` and may keep the data
    preprocessor at the top level, as the libraries' recipes do.
    """
    if isinstance(teacher, (dict, ConfigDict)):
        return copy.deepcopy(teacher), None
    if not isinstance(teacher, str):
        raise TypeError('`teacher` should be a model dict, a config file or '
                        f"a 'pkg::path' config, but got {type(teacher)}.")
    # Checked before it runs: a `pkg::` name stays in the package's
    # configs, a URL is refused (see config_paths).
    cfg = Config.fromfile(resolve_config_path(teacher, 'teacher'))
    if 'model' not in cfg:
        raise ValueError(f'`teacher` config {teacher!r} should define '
                         '`model`, but it has none.')
    model = copy.deepcopy(cfg.model)
    if 'data_preprocessor' in cfg:
        model.setdefault('data_preprocessor', cfg.data_preprocessor)
    return model, cfg.get('default_scope')


def zoo_checkpoint(teacher: TeacherCfg) -> str:
    """The model-zoo URL of a ``'pkg::path'`` config, from its metafile."""
    if not (isinstance(teacher, str) and '::' in teacher):
        raise ValueError('`teacher_pretrained=True` should come with a '
                         f"'pkg::path' teacher config, but got {teacher!r}; "
                         'give `teacher_ckpt` instead.')
    # The metafile entry alone: the config itself need not run for it.
    url = package_config_weights(teacher, 'teacher')
    if url is None:
        raise ValueError(f'`teacher` {teacher!r} should be listed with '
                         "weights in its package's metafiles, but it is "
                         'not; give `teacher_ckpt` instead.')
    return url


def build_teacher(teacher: TeacherCfg,
                  ckpt: Optional[str] = None,
                  strict: bool = True,
                  pretrained: bool = False,
                  converter: Optional[Union[str, Callable]] = None
                  ) -> Tuple[nn.Module, bool]:
    """Build the teacher, load its weights, freeze it and set eval mode.

    The teacher's own ``init_weights`` is never called: its weights come from
    ``ckpt`` (a recipe's ``init_cfg`` would otherwise fetch backbone weights
    that the checkpoint overwrites anyway). ``pretrained=True`` takes the
    checkpoint URL of a ``'pkg::path'`` config from the package's metafiles.
    ``converter`` (a callable or a name registered in MMEngine's
    ``FUNCTIONS``, e.g. ``'torchvision_resnet'``) maps the checkpoint's keys
    to the model's before the strict load. Also returns whether the
    teacher's config names its own ``data_preprocessor``.
    """
    converter = get_converter(converter)
    if pretrained:
        if ckpt is not None:
            raise ValueError('`teacher_pretrained=True` should not be '
                             f'combined with `teacher_ckpt`, but got '
                             f'{ckpt!r}; keep one of them.')
        ckpt = zoo_checkpoint(teacher)
    model_cfg, scope = teacher_model_cfg(teacher)
    if scope is None:
        model = MODELS.build(model_cfg)
    else:
        with DefaultScope.overwrite_default_scope(scope):
            model = MODELS.build(model_cfg)
    if ckpt is not None:
        load_weights(
            model,
            ckpt,
            strict=strict,
            name='teacher',
            converter=converter,
            config=teacher if isinstance(teacher, str) else None)
    else:
        # MMEngine's logger, not `warnings`: it reaches the work dir's log.
        print_log(
            '`teacher_ckpt` is None: the teacher keeps its random initial '
            'weights, which only makes sense in tests.',
            logger='current',
            level=logging.WARNING)
    model.requires_grad_(False)
    if isinstance(model, BaseModule):
        # A later `init_weights()` (the Runner's, a user's) must not
        # re-initialise loaded weights: it is a no-op on an initialised one.
        model.is_init = True
    # Whether the teacher's inputs are its own (see .teacher_inputs).
    return model.eval(), 'data_preprocessor' in model_cfg
