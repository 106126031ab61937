"""What tools/train.py and tools/test.py share: runner options."""
import argparse
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction


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


def apply_runner_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply :func:`add_runner_args` options to ``cfg`` (in place)."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        name = osp.splitext(osp.basename(args.config.split('::')[-1]))[0]
        cfg.work_dir = osp.join('./work_dirs', name)
    if args.launcher == 'pytorch' and not torch.cuda.is_available():
        # CPU-only DDP (smoke runs, CI): MMEngine's launcher would pick a
        # CUDA device, so join the gloo group here; no CUDA device ids.
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group(backend='gloo')
        wrapper = dict(cfg.get('model_wrapper_cfg') or {})
        wrapper.setdefault('device_ids', None)
        cfg.model_wrapper_cfg = wrapper
    return cfg
