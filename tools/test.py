"""Evaluate a checkpoint with the config's test loop and metrics."""
import argparse

from mmengine.runner import Runner

import distkd_mm  # noqa: F401  (registers Distiller, DISTLoss, ...)
from distkd_mm.utils.attach import load_config
from distkd_mm.utils.cli import add_runner_args, apply_runner_args


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a (distilled) model')
    parser.add_argument(
        'config', help='test config file path (or pkg::path/to/config.py)')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out', help='dump the metrics to this json/yaml/pickle file')
    add_runner_args(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config)
    apply_runner_args(cfg, args)
    cfg.load_from = args.checkpoint
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    if args.out is not None:
        from mmengine.fileio import dump
        dump(metrics, args.out)


if __name__ == '__main__':
    main()
