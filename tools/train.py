"""Train a model (a Distiller or any plain OpenMMLab model) from a config.

Same command line as mmdet's / mmpretrain's tools/train.py.
"""
import argparse
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import distkd_mm  # noqa: F401  (registers Distiller, DISTLoss, ...)
from distkd_mm.utils.attach import PRESETS, attach_teacher, load_config


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a (distilled) model')
    parser.add_argument(
        'config', help='train config file path (or pkg::path/to/config.py)')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
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
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args: argparse.Namespace) -> Config:
    cfg = load_config(args.config)
    if args.teacher is not None:
        cfg = attach_teacher(cfg, args.teacher, args.teacher_ckpt,
                             args.distill, args.teacher_pretrained)
    elif args.teacher_ckpt or args.distill or args.teacher_pretrained:
        raise ValueError('`--teacher-ckpt`, `--teacher-pretrained` and '
                         '`--distill` should come with `--teacher`, but it '
                         'is missing; add `--teacher TEACHER_CONFIG`.')
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
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
    if args.launcher == 'pytorch' and not torch.cuda.is_available():
        # CPU-only DDP (smoke runs, CI): MMEngine's launcher would pick a
        # CUDA device, so join the gloo group here; no CUDA device ids.
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group(backend='gloo')
        wrapper = dict(cfg.get('model_wrapper_cfg') or {})
        wrapper.setdefault('device_ids', None)
        cfg.model_wrapper_cfg = wrapper
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
