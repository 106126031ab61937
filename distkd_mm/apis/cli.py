"""What tools/train.py and tools/test.py share: runner options, the runner
the config names (CPU-only DDP included), the work dir of ``--teacher``
runs, and the check that auto-resume stays in one model."""
import argparse
import datetime
import inspect
import itertools
import os
import os.path as osp
from typing import Dict, List, Optional, Set, Tuple

import torch
import torch.nn as nn
from mmengine._strategy import DDPStrategy
from mmengine.config import Config, DictAction
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import RUNNERS, STRATEGIES
from mmengine.runner import (CheckpointLoader, FlexibleRunner, Runner,
                             find_latest_checkpoint)

from ..distillers import Distiller
from ..utils.checkpoint import resuming_own_checkpoint
from ..utils.student_layout import bare_state, state_dict_of
from ..utils.weights import state_differences

# Distiller arguments that also exist on the student: `--cfg-options
# model.data_preprocessor...` next to `--teacher` means the student's.
_SHARED_ARGS = {'data_preprocessor', 'init_cfg'}


def add_runner_args(parser: argparse.ArgumentParser) -> None:
    """``--work-dir``, ``--cfg-options``, ``--launcher``, ``--local-rank``."""
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value (xxx=yyy format)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank; older tools --local_rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


_RUN_NUMBERS = itertools.count()


def unique_experiment_name(stem: str) -> str:
    """An experiment name no other Runner of this process has.

    MMEngine keys its logger, message hub and visualizer by the experiment
    name, which for a dict config is only the start time in seconds: two
    Runners built in one second would share them (the second run's log file
    is never written). The Runner appends its timestamp to this name.
    """
    return f'{stem}_{os.getpid()}-{next(_RUN_NUMBERS)}'


def config_name(path: str) -> str:
    """``'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'`` -> the stem."""
    return osp.splitext(osp.basename(path.split('::')[-1]))[0]


def apply_runner_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply :func:`add_runner_args` options to ``cfg`` (in place)."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.get('experiment_name') is None:
        cfg.experiment_name = unique_experiment_name(config_name(args.config))
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', config_name(args.config))
    return cfg


def build_runner(cfg: Config):
    """The runner the config names, as mmdet's and mmseg's train.py do.

    ``runner_type`` (e.g. ``'FlexibleRunner'`` with a ``strategy``) is built
    from MMEngine's ``RUNNERS``; without it, MMEngine's ``Runner``.
    """
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    _fill_env_cfg(cfg)
    return RUNNERS.build(cfg)


def _fill_env_cfg(cfg: Config) -> None:
    if issubclass(runner_class(cfg), FlexibleRunner) and \
            cfg.get('env_cfg') is None:
        # FlexibleRunner.from_cfg passes a missing `env_cfg` on as None,
        # which its __init__ cannot read: give it the __init__'s default.
        cfg.env_cfg = dict(dist_cfg=dict(backend='nccl'))


def runner_class(cfg: Config) -> type:
    """The class :func:`build_runner` builds for ``cfg``."""
    runner_type = cfg.get('runner_type', 'Runner')
    if inspect.isclass(runner_type):
        return runner_type
    cls = RUNNERS.get(runner_type)
    if cls is None:
        raise KeyError(
            f'`runner_type` should be a runner registered in MMEngine\'s '
            f'RUNNERS (e.g. Runner, FlexibleRunner), but got '
            f'{runner_type!r}; fix the name or import the module that '
            'registers it (`custom_imports`).')
    return cls


# MMEngine's DDPStrategy wraps with this when `model_wrapper` is None.
_DDP_STRATEGY_WRAPPER = dict(
    type='MMDistributedDataParallel', broadcast_buffers=False)
# Strategies that shard or offload through CUDA: no CPU-only run.
_CUDA_STRATEGIES = ('FSDPStrategy', 'DeepSpeedStrategy', 'ColossalAIStrategy')


def fit_runner_to_launcher(cfg: Config) -> List[str]:
    """Make the config's runner start under ``cfg.launcher`` (in place).

    - ``--launcher pytorch`` without CUDA (CPU smoke runs, CI): MMEngine's
      launcher calls ``torch.cuda.set_device`` before it joins the process
      group, and both of its DDP wrappers pass CUDA device ids
      (``[LOCAL_RANK]``), which a CPU model refuses. So join a gloo group
      here (keeping ``env_cfg.dist_cfg.timeout``) and wrap with
      ``device_ids=None``: in ``model_wrapper_cfg`` for the ``Runner``, in
      ``strategy.model_wrapper`` for a ``FlexibleRunner``'s DDPStrategy
      (the strategy it picks for a launcher when the config names none).
    - ``--launcher none`` with a FlexibleRunner DDPStrategy: DDP needs a
      process group, which one process never joins; run on one device
      (SingleDeviceStrategy, what FlexibleRunner picks without a
      launcher), as the ``Runner`` does with the same config.

    Returns:
        Notes for the run's log: what was changed, and why.

    Raises:
        ValueError: a FlexibleRunner strategy that needs CUDA (FSDP,
            DeepSpeed, ColossalAI) on a machine without CUDA.
    """
    _fill_env_cfg(cfg)  # for the libraries' test.py too
    launcher = cfg.get('launcher', 'none')
    cpu_ddp = launcher == 'pytorch' and not torch.cuda.is_available()
    if not issubclass(runner_class(cfg), FlexibleRunner):
        if cpu_ddp:
            _join_gloo(cfg)
            wrapper = dict(cfg.get('model_wrapper_cfg') or {})
            wrapper.setdefault('device_ids', None)
            cfg.model_wrapper_cfg = wrapper
        return []
    given = cfg.get('strategy')
    if given is None and launcher == 'none':
        return []  # FlexibleRunner picks SingleDeviceStrategy
    strategy = dict(given or dict(type='DDPStrategy'))
    kind = strategy.get('type')
    if isinstance(kind, str):
        kind = STRATEGIES.get(kind) or kind
    name = getattr(kind, '__name__', kind)
    is_ddp = inspect.isclass(kind) and issubclass(kind, DDPStrategy)
    if launcher == 'none' and is_ddp:
        for key in ('model_wrapper', 'sync_bn'):  # DDPStrategy's own
            strategy.pop(key, None)
        strategy['type'] = 'SingleDeviceStrategy'
        cfg.strategy = strategy
        return [
            f'`strategy.type` {name} needs a launcher (`--launcher '
            'pytorch`, tools/dist_train.sh); this single process runs '
            'with SingleDeviceStrategy.'
        ]
    if not cpu_ddp:
        return []
    if name in _CUDA_STRATEGIES:
        raise ValueError(
            f'`strategy.type` should be DDPStrategy on a machine without '
            f'CUDA, but got {name}, which needs CUDA devices; use '
            "`strategy=dict(type='DDPStrategy')` here, or run on GPUs.")
    _join_gloo(cfg)
    if is_ddp:
        wrapper = dict(strategy.get('model_wrapper') or _DDP_STRATEGY_WRAPPER)
        wrapper.setdefault('device_ids', None)
        strategy['model_wrapper'] = wrapper
        cfg.strategy = strategy
    return []


def _join_gloo(cfg: Config) -> None:
    if torch.distributed.is_initialized():
        return
    dist_cfg = (cfg.get('env_cfg') or {}).get('dist_cfg') or {}
    timeout = dist_cfg.get('timeout')  # seconds, as MMEngine reads it
    extra = {} if timeout is None else dict(
        timeout=datetime.timedelta(seconds=timeout))
    torch.distributed.init_process_group(backend='gloo', **extra)


def teacher_work_dir(cfg: Config, student: str, teacher: str,
                     preset: str) -> str:
    """The default work dir of a ``--teacher`` run: its own, never the
    baseline's (auto-resume would pick up the baseline's checkpoints).

    Named as the configs here are, ``<algorithm>_<teacher>_<student>``, next
    to the student config's own work dir (``./work_dirs`` by default).
    """
    algorithm = 'kd' if preset == 'kd' else 'dist'
    name = f'{algorithm}_{config_name(teacher)}_{config_name(student)}'
    baseline = cfg.get('work_dir')
    parent = osp.dirname(osp.normpath(baseline)) if baseline else \
        './work_dirs'
    return osp.join(parent, name)


def distiller_args() -> Set[str]:
    """The Distiller's own arguments, except those the student has too."""
    params = inspect.signature(Distiller.__init__).parameters.values()
    return {p.name
            for p in params if p.kind is p.POSITIONAL_OR_KEYWORD
            } - {'self', 'student'} - _SHARED_ARGS


def split_student_options(options: Optional[Dict]
                          ) -> Tuple[Dict, Dict, List[str]]:
    """Split ``--cfg-options`` of a ``--teacher`` run.

    The user wrote them for the config they passed, whose ``model`` is the
    student: ``model.X`` goes to the student unless ``X`` is a Distiller
    argument (``model.teacher_ckpt``, ...) or ``X`` is ``student`` itself.

    Returns:
        The options for the plain (student) config, those for the wrapped
        config, and one note per redirected key for the log.
    """
    student, wrapped, notes = {}, {}, []
    own = distiller_args() | {'student'}
    for key, value in (options or {}).items():
        parts = key.split('.')
        if parts[0] == 'model' and len(parts) > 1 and parts[1] not in own:
            student[key] = value
            rest = '.'.join(parts[1:])
            notes.append(f'`--cfg-options {key}` applies to the student '
                         f'(the config you passed); in the saved config it '
                         f'is `model.student.{rest}`.')
        else:
            wrapped[key] = value
    return student, wrapped, notes


def _prefixes(keys: Set[str]) -> str:
    # `_extra_state` and the like are bookkeeping, not weights.
    tops = sorted({key.split('.')[0] for key in keys} - {''})
    tops = [top for top in tops if not top.startswith('_')]
    return ', '.join(f'{top}.*' for top in tops[:6]) or 'no weights'


def check_auto_resume(runner, cfg: Config) -> None:
    """Refuse to auto-resume a checkpoint written by a different model.

    ``--resume`` without a path takes the latest checkpoint of the work
    dir. When that was written by another model (a baseline sharing the
    dir), MMEngine loads what matches, warns for every other key and
    crashes on the optimizer's parameter groups; fail first, naming both.
    A ``FlexibleRunner`` builds its model only in ``train()``, just before
    it resumes: there the check runs on the checkpoint it read, before
    any weight is loaded.
    """
    if not cfg.get('resume') or cfg.get('load_from') is not None:
        return
    path = find_latest_checkpoint(runner.work_dir)
    if path is None:
        return
    if not isinstance(runner.model, nn.Module):
        runner.register_hook(_ResumeCheckHook(path), priority='VERY_HIGH')
        return
    # As the Runner's resume reads it (the run's own checkpoint): a
    # truncated one names the work dir's previous complete checkpoint.
    with resuming_own_checkpoint():
        checkpoint = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    _refuse_other_model(checkpoint, path, runner)


class _ResumeCheckHook(Hook):
    """:func:`check_auto_resume` on the checkpoint a FlexibleRunner read."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.done = False

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not self.done:  # the resume; later loads are the user's
            self.done = True
            _refuse_other_model(checkpoint, self.path, runner)


def _refuse_other_model(checkpoint: dict, path: str, runner) -> None:
    # A FlexibleRunner's DDPStrategy saves the wrapper's `module.` keys,
    # which MMEngine's resume strips.
    state = bare_state(state_dict_of(checkpoint))
    model = runner.model.module if is_model_wrapper(
        runner.model) else runner.model
    # Keys and shapes: a widened student has every key of the old one.
    diffs = state_differences(state, model.state_dict())
    if not diffs:
        return
    run = checkpoint.get('meta', {}).get('experiment_name', 'another run')
    raise RuntimeError(
        f'`--resume` found the latest checkpoint {path} in the work dir '
        f'{runner.work_dir}, but a different model wrote it: run {run!r}, '
        f'weights {_prefixes(set(state))}; this run trains a '
        f'{type(model).__name__} with weights '
        f'{_prefixes(set(model.state_dict()))}; {len(diffs)} differences: '
        f'{"; ".join(diffs[:5])}. Give this run its own `--work-dir`, or '
        'resume a checkpoint of this model with `--resume CHECKPOINT`.')
