"""Test a checkpoint with the task library's own tools/test.py.

Every flag means what it means in that library: ``--out`` (mmdet: a
``.pkl`` of predictions; mmseg: a folder of predicted masks; mmpretrain: a
``.pkl`` of predictions, or the metrics with ``--out-item metrics``),
``--show``, ``--show-dir``, ``--wait-time``, ``--tta``, ``--work-dir``,
``--cfg-options`` (applied to the config before the library's script
reads it), ``--launcher``. The library is the config's
``default_scope``, and its script builds the config's ``runner_type``
(mmseg's: always ``Runner``). On top, this wrapper accepts ``pkg::path``
configs and runs ``--launcher pytorch`` on machines without CUDA (gloo),
under the ``Runner`` or a FlexibleRunner's DDPStrategy.

    python tools/test.py CONFIG CHECKPOINT [the library's test.py flags]
"""
import argparse
import copy
import importlib
import os.path as osp
import runpy
import sys
import tempfile
from typing import List

from mmengine.config import DictAction

import distkd_mm  # noqa: F401  (registers Distiller, DISTLoss, ...)
from distkd_mm.apis.attach import load_config
from distkd_mm.apis.cli import config_name, fit_runner_to_launcher
from distkd_mm.hooks import add_student_checkpoint_hook
from distkd_mm.utils.student_layout import as_student_state
from distkd_mm.utils.urls import hide_url_secrets
from distkd_mm.utils.weights import (MIN_LOADED_SHARE, count_fit,
                                     unfit_submodules)

LIBRARIES = ('mmpretrain', 'mmdet', 'mmseg')


def library_script(cfg, script: str = 'test.py') -> str:
    """The installed task library's own ``tools/<script>``."""
    scope = cfg.get('default_scope')
    if scope not in LIBRARIES:
        raise ValueError(
            f'`default_scope` should name the task library ({LIBRARIES}) '
            f'whose tools/{script} runs the config, but got {scope!r}; set '
            'it in the config.')
    root = osp.dirname(importlib.import_module(scope).__file__)
    path = osp.join(root, '.mim', 'tools', script)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{scope} is installed without its tools ({path} is missing); '
            f'reinstall it with `pip install {scope}` or `mim install '
            f'{scope}`.')
    return path


def main(argv: List[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], add_help=False)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    if len(argv) < 2 or argv[0] in ('-h', '--help'):
        print(__doc__)
        return
    # Applied here, into the config the library's script reads: they may
    # choose the runner and its strategy (fitted to the launcher below), or
    # the model whose heads must fit the checkpoint.
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args, rest = parser.parse_known_args(argv)
    cfg = load_config(args.config)
    cfg.merge_from_dict(args.cfg_options or {})
    script = library_script(cfg)
    check_heads_fit(cfg, args.checkpoint)
    config = args.config
    tmp = tempfile.TemporaryDirectory()
    # The libraries' scripts read files only: write the resolved config,
    # with StudentCheckpointHook (a Distiller checkpoint then loads into a
    # plain student config, or fails instead of scoring random weights).
    add_student_checkpoint_hook(cfg)
    # The library's script sets the launcher; the runner it builds (the
    # config's `runner_type`) then starts as tools/train.py's does: gloo
    # and no CUDA device ids on a CPU, one device for a single process.
    cfg.launcher = _launcher(rest)
    for note in fit_runner_to_launcher(cfg):
        print(note)
    # The library's Runner, in this process, logs and dumps the config:
    # URLs without tokens there, downloads with the full ones.
    for note in hide_url_secrets(cfg):
        print(note)
    config = osp.join(tmp.name, osp.basename(config.split('::')[-1]))
    cfg.dump(config)
    if '::' in args.config:
        if '--work-dir' not in rest and cfg.get('work_dir') is None:
            rest += ['--work-dir', f'./work_dirs/{config_name(args.config)}']
    sys.argv = [script, config, args.checkpoint, *rest]
    try:
        runpy.run_path(script, run_name='__main__')
    finally:
        tmp.cleanup()


def check_heads_fit(cfg, checkpoint: str) -> None:
    """Refuse a checkpoint that leaves a whole submodule at random.

    A 10-class checkpoint for a 7-class config fits every backbone tensor,
    so the half rule lets it pass and the library scores a random head
    with exit code 0. Checked before the library's script runs.

    Raises:
        ValueError: a submodule (e.g. ``head.fc``) none of whose tensors
            find one of the same key and shape in the checkpoint.
    """
    from mmengine.registry import MODELS, DefaultScope
    from mmengine.runner import CheckpointLoader

    from distkd_mm.utils.checkpoint import extract_state_dict

    model_cfg = cfg.model
    if model_cfg.get('type') == 'Distiller':
        model_cfg = model_cfg.student  # only the student is evaluated
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        # A copy: some models write into their config while they build
        # (mmseg's EncoderDecoder moves `pretrained` into the backbone).
        model_state = MODELS.build(copy.deepcopy(model_cfg)).state_dict()
    state = extract_state_dict(
        CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu'))
    # Only the student is evaluated; a FlexibleRunner's DDPStrategy saves
    # the wrapper's `module.` keys, which MMEngine's load strips.
    state = as_student_state(state)
    fitting, total = count_fit(state, model_state)
    if fitting < MIN_LOADED_SHARE * total:
        return  # StudentCheckpointHook refuses it, with the export hint
    unfit = unfit_submodules(state, model_state)
    if unfit:
        name = unfit[0]
        shapes = '; '.join(
            f'{k}: checkpoint '
            f'{tuple(state[k].shape) if k in state else "missing"} vs model '
            f'{tuple(v.shape)}' for k, v in model_state.items()
            if k.rsplit('.', 1)[0] == name)
        raise ValueError(
            f'`checkpoint` should fit every part of the model, but got '
            f'{checkpoint} in which nothing of {", ".join(unfit[:5])} fits '
            f'({shapes}); testing it would score `{name}` at random. Use the '
            'checkpoint trained with this config (e.g. the same '
            '`num_classes`), or change the config to match it.')


def _launcher(rest: List[str]) -> str:
    for i, arg in enumerate(rest):
        if arg.startswith('--launcher='):
            return arg.split('=', 1)[1]
        if arg == '--launcher' and i + 1 < len(rest):
            return rest[i + 1]
    return 'none'


if __name__ == '__main__':
    main(sys.argv[1:])
