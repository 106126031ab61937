"""Train a model (a Distiller or any plain OpenMMLab model) from a config.

Same command line as mmdet's / mmpretrain's tools/train.py.
"""
import argparse

from mmengine.config import Config
from mmengine.runner import Runner

import distkd_mm  # noqa: F401  (registers Distiller, DISTLoss, ...)
from distkd_mm.utils.attach import PRESETS, attach_teacher, load_config
from distkd_mm.utils.cli import add_runner_args, apply_runner_args


def parse_args() -> argparse.Namespace:
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
    return parser.parse_args()


def build_config(args: argparse.Namespace) -> Config:
    cfg = load_config(args.config)
    if args.teacher is not None:
        cfg = attach_teacher(cfg, args.teacher, args.teacher_ckpt,
                             args.distill, args.teacher_pretrained)
    elif args.teacher_ckpt or args.distill or args.teacher_pretrained:
        raise ValueError('`--teacher-ckpt`, `--teacher-pretrained` and '
                         '`--distill` should come with `--teacher`, but it '
                         'is missing; add `--teacher TEACHER_CONFIG`.')
    apply_runner_args(cfg, args)
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
    return cfg


def main() -> None:
    args = parse_args()
    cfg = build_config(args)
    runner = Runner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    main()
