"""Train a model (a Distiller or any plain OpenMMLab model) from a config.

Same command line as mmdet's / mmpretrain's tools/train.py.
"""
import argparse
from typing import List, Optional, Tuple

from mmengine.config import Config

import distkd_mm  # noqa: F401  (registers Distiller, DISTLoss, ...)
from distkd_mm.apis.attach import (PRESETS, attach_teacher, guess_preset,
                                   load_config)
from distkd_mm.apis.cli import (add_runner_args, apply_runner_args,
                                build_runner, check_auto_resume,
                                fit_runner_to_launcher, split_student_options,
                                teacher_work_dir)
from distkd_mm.apis.work_dir_lock import work_dir_lock
from distkd_mm.utils.urls import hide_url_secrets


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a (distilled) model')
    parser.add_argument(
        'config', help='train config file path (or pkg::path/to/config.py)')
    parser.add_argument(
        '--amp', action='store_true', help='enable automatic mixed precision')
    parser.add_argument(
        '--auto-scale-lr', action='store_true', help='scale the lr by batch')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint, or from the latest one in the '
        'work dir when no path is given')
    parser.add_argument(
        '--teacher',
        help='attach this teacher (config file or pkg::path) to the plain '
        'student config')
    parser.add_argument(
        '--teacher-ckpt', help="the teacher's weights: path, URL, zoo name")
    parser.add_argument(
        '--teacher-pretrained',
        action='store_true',
        help="take the teacher's weights from its package's metafile")
    parser.add_argument(
        '--distill',
        choices=sorted(PRESETS),
        help='taps and losses to attach the teacher with (default: guessed '
        "from the student's type)")
    add_runner_args(parser)
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> Tuple[Config, List[str]]:
    """The config to train, and notes for the run's log."""
    cfg = load_config(args.config)
    notes: List[str] = []
    if args.teacher is not None:
        cfg, notes = attach_from_cli(cfg, args)
    elif args.teacher_ckpt or args.distill or args.teacher_pretrained:
        raise ValueError('`--teacher-ckpt`, `--teacher-pretrained` and '
                         '`--distill` should come with `--teacher`, but it '
                         'is missing; add `--teacher TEACHER_CONFIG`.')
    apply_runner_args(cfg, args)
    # After --cfg-options: they may choose the runner or its strategy.
    notes += fit_runner_to_launcher(cfg)
    if args.amp:
        optim_wrapper = cfg.optim_wrapper
        if optim_wrapper.get('type', 'OptimWrapper') != 'AmpOptimWrapper':
            optim_wrapper.type = 'AmpOptimWrapper'
            optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in \
                cfg.auto_scale_lr:
            raise ValueError('`--auto-scale-lr` needs `auto_scale_lr.'
                             'base_batch_size` in the config, but it has '
                             'none; add it or drop the flag.')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg, notes


def attach_from_cli(cfg: Config,
                    args: argparse.Namespace) -> Tuple[Config, List[str]]:
    """Wrap the plain config's model as ``--teacher`` asks.

    ``--cfg-options model.X`` were written for the config the user passed,
    so they reach the student; the run gets its own default work dir.
    """
    student_opts, other_opts, notes = split_student_options(args.cfg_options)
    cfg.merge_from_dict(student_opts)
    preset = args.distill or guess_preset(cfg.model)
    wrapped = attach_teacher(cfg, args.teacher, args.teacher_ckpt, preset,
                             args.teacher_pretrained)
    if args.work_dir is None:
        wrapped.work_dir = teacher_work_dir(cfg, args.config, args.teacher,
                                            preset)
        notes.append(f'This --teacher run has its own work dir '
                     f'{wrapped.work_dir} (give --work-dir to choose one).')
    args.cfg_options = other_opts or None
    return wrapped, notes


def main() -> None:
    args = parse_args()
    cfg, notes = build_config(args)
    # The Runner logs, dumps and checkpoints its config: it gets URLs
    # without tokens, the downloads use the full ones.
    notes += hide_url_secrets(cfg)
    # Before the Runner: a second live run in this work dir is refused
    # before it builds anything or writes a log folder.
    with work_dir_lock(cfg.work_dir, cfg.launcher):
        # `runner_type` (FlexibleRunner + `strategy`) as mmdet's train.py.
        runner = build_runner(cfg)
        for note in notes:
            runner.logger.info(note)
        check_auto_resume(runner, cfg)
        runner.train()


if __name__ == '__main__':
    main()
