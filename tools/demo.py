#!/usr/bin/env python
"""DIST on real data in minutes on a CPU: scikit-learn's handwritten digits.

For every seed the demo trains, through the ordinary MMEngine ``Runner`` and
the configs in ``configs/demo``:

1. a teacher (CIFAR-style ResNet-18, 32 base channels),
2. a baseline student (the same net at 4 base channels, cross-entropy only),
3. a DIST student (the baseline plus DIST on the logits, from the teacher
   trained in step 1),
4. a KD student (the baseline with classic logit KD instead, CE weight 0.9),

all with the same seed and schedule. It prints a table of final validation
top-1 accuracy (mean +- std when several seeds are given) and saves a PNG of
the students' validation accuracy per epoch, with the teacher as a line.

Example::

    python tools/demo.py                      # one seed, ~3-4 min on 2 cores
    python tools/demo.py --seeds 0 1 2        # mean +- std over three seeds
"""
import argparse
import json
import os
import os.path as osp
import statistics
import time
from typing import Dict, List, Optional, Sequence

# Set before anything imports pyplot: the demo must run headless.
import matplotlib

matplotlib.use('Agg')

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from distkd_mm.apis.cli import unique_experiment_name  # noqa: E402

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(REPO_ROOT, 'configs', 'demo')

# (run name, config file, label in the table and the plot), in the order the
# runs must happen: the teacher's checkpoint feeds the distilled students.
RUNS = (
    ('teacher', 'digits_teacher.py', 'teacher'),
    ('baseline', 'digits_student.py', 'baseline student'),
    ('dist', 'digits_dist.py', 'DIST student'),
    ('kd', 'digits_kd.py', 'KD student'),
)
ACC_KEY = 'accuracy/top1'


class ValAccuracyRecorder(Hook):
    """Collect the validation top-1 accuracy after every epoch.

    Registered on each runner by the demo (not through the config), so the
    configs stay plain and usable with ``tools/train.py``.
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self.history: List[float] = []

    def after_val_epoch(self,
                        runner,
                        metrics: Optional[Dict[str, float]] = None) -> None:
        """Store the epoch's accuracy as a fraction in [0, 1]."""
        if metrics and ACC_KEY in metrics:
            # mmpretrain's Accuracy reports percentages.
            self.history.append(float(metrics[ACC_KEY]) / 100.0)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description='Distil on scikit-learn digits: teacher, baseline, '
        'DIST and KD students with one seed and schedule.')
    parser.add_argument(
        '--work-dir',
        default='work_dirs/demo',
        help='where runs, results.json and the plot go')
    parser.add_argument(
        '--seeds',
        type=int,
        nargs='+',
        default=[0],
        help='training seeds; several give mean +- std')
    parser.add_argument(
        '--epochs',
        type=int,
        default=None,
        help='override the epochs of all four runs (default: the configs)')
    parser.add_argument(
        '--threads',
        type=int,
        default=1,
        help='torch CPU threads (default 1: 8x8 images give ops too small '
        'to split, and spare cores keep other jobs from slowing the demo)')
    parser.add_argument(
        '--verbose',
        action='store_true',
        help="show MMEngine's training log instead of only the summary")
    return parser.parse_args(argv)


def build_cfg(config: str,
              work_dir: str,
              seed: int,
              epochs: Optional[int],
              verbose: bool,
              extra: Optional[dict] = None) -> Config:
    """Load a demo config and apply the run's overrides.

    Overrides go through ``Config.merge_from_dict`` (what ``--cfg-options``
    does), so what runs is the checked-in config plus a visible diff.
    """
    cfg = Config.fromfile(osp.join(CONFIG_DIR, config))
    options = {
        'work_dir':
        work_dir,
        'randomness.seed':
        seed,
        'experiment_name':
        unique_experiment_name(f'{osp.splitext(config)[0]}_seed{seed}'),
    }
    if not verbose:
        options['log_level'] = 'WARNING'
    if epochs is not None:
        options['train_cfg.max_epochs'] = epochs
        options['param_scheduler.end'] = epochs
    options.update(extra or {})
    cfg.merge_from_dict(options)
    return cfg


def last_checkpoint(work_dir: str) -> str:
    """Path of the last checkpoint CheckpointHook wrote in ``work_dir``."""
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        path = f.read().strip()
    # CheckpointHook records the path as it built it, which is relative
    # when the work dir is; make it independent of the current directory.
    return osp.abspath(path)


def count_params(runner: Runner) -> int:
    """Trainable parameters of the model the runner trains."""
    return sum(p.numel() for p in runner.model.parameters() if p.requires_grad)


def train_one(name: str,
              config: str,
              work_dir: str,
              seed: int,
              epochs: Optional[int],
              verbose: bool,
              extra: Optional[dict] = None) -> dict:
    """Train one model with the Runner; return its accuracy history."""
    cfg = build_cfg(config, work_dir, seed, epochs, verbose, extra)
    start = time.perf_counter()
    runner = Runner.from_cfg(cfg)
    recorder = ValAccuracyRecorder()
    runner.register_hook(recorder)
    runner.train()
    seconds = time.perf_counter() - start
    if not recorder.history:
        raise RuntimeError(f'{name}: no validation accuracy was recorded')
    return dict(
        history=recorder.history,
        final=recorder.history[-1],
        seconds=seconds,
        params=count_params(runner),
        work_dir=work_dir)


def run_seed(root: str, seed: int, epochs: Optional[int],
             verbose: bool) -> Dict[str, dict]:
    """Train the teacher, then the three students, for one seed."""
    results: Dict[str, dict] = {}
    teacher_ckpt = None
    for name, config, label in RUNS:
        work_dir = osp.join(root, f'seed{seed}', name)
        extra = None
        if name in ('dist', 'kd'):
            # The teacher checkpoint is the one just trained.
            extra = {'model.teacher_ckpt': teacher_ckpt}
        print(f'[demo] seed {seed}: training {label} ...', flush=True)
        res = train_one(name, config, work_dir, seed, epochs, verbose, extra)
        print(
            f'[demo] seed {seed}: {label}: val top-1 '
            f'{100 * res["final"]:.2f}% after {len(res["history"])} epochs '
            f'({res["seconds"]:.1f} s)',
            flush=True)
        if name == 'teacher':
            teacher_ckpt = last_checkpoint(work_dir)
        results[name] = res
    return results


def mean_std(values: Sequence[float]) -> str:
    """Format percentages as ``mean`` or ``mean +- std`` (sample std)."""
    mean = 100 * statistics.mean(values)
    if len(values) < 2:
        return f'{mean:.2f}'
    return f'{mean:.2f} +- {100 * statistics.stdev(values):.2f}'


def format_table(all_results: Dict[int, Dict[str, dict]]) -> str:
    """The summary table: final val top-1 per model, over seeds."""
    seeds = sorted(all_results)
    first = all_results[seeds[0]]
    epochs = len(first['baseline']['history'])
    lines = [
        f'Digits val top-1 (%) after {epochs} epochs, '
        f'seed{"s" if len(seeds) > 1 else ""} '
        f'{", ".join(map(str, seeds))}'
        f'{" (mean +- std)" if len(seeds) > 1 else ""}',
    ]
    header = f'{"model":<18}{"params":>9}  {"top-1 (%)":>16}'
    header += f'  {"vs baseline":>11}  {"time/seed":>9}'
    lines += [header, '-' * len(header)]
    base = [all_results[s]['baseline']['final'] for s in seeds]
    for name, _, label in RUNS:
        accs = [all_results[s][name]['final'] for s in seeds]
        secs = statistics.mean(all_results[s][name]['seconds'] for s in seeds)
        delta = ''
        if name not in ('teacher', 'baseline'):
            gain = statistics.mean(accs) - statistics.mean(base)
            delta = f'{100 * gain:+.2f}'
        lines.append(f'{label:<18}{first[name]["params"]:>9,}  '
                     f'{mean_std(accs):>16}  {delta:>11}  {secs:>8.1f}s')
    return '\n'.join(lines)


def save_plot(all_results: Dict[int, Dict[str, dict]], path: str) -> None:
    """Plot the students' val accuracy per epoch and the teacher's line.

    With several seeds the curves are the mean and the band is +- one std.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    seeds = sorted(all_results)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, _, label in RUNS[1:]:
        curves = np.array([all_results[s][name]['history']
                           for s in seeds]) * 100
        mean = curves.mean(axis=0)
        epochs = np.arange(1, len(mean) + 1)
        (line, ) = ax.plot(epochs, mean, marker='.', label=label)
        if len(seeds) > 1:
            std = curves.std(axis=0, ddof=1)
            ax.fill_between(
                epochs,
                mean - std,
                mean + std,
                alpha=0.2,
                color=line.get_color())
    teacher = 100 * np.mean(
        [all_results[s]['teacher']['final'] for s in seeds])
    ax.axhline(
        teacher,
        color='black',
        linestyle='--',
        label=f'teacher (final, {teacher:.2f}%)')
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel('epoch')
    ax.set_ylabel('val top-1 accuracy (%)')
    title = 'DIST on scikit-learn digits'
    if len(seeds) > 1:
        title += f' (mean +- std over {len(seeds)} seeds)'
    ax.set_title(title)
    # The interesting part is the last few percent; early epochs would
    # otherwise squash it.
    finals = [teacher] + [
        100 * all_results[s][n]['final'] for s in seeds for n, _, _ in RUNS[1:]
    ]
    ax.set_ylim(max(0.0, min(finals) - 10), 100.5)
    ax.grid(alpha=0.3)
    ax.legend(loc='lower right')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> Dict[int, Dict[str, dict]]:
    """Run the demo; return the results per seed and run name."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    root = osp.abspath(args.work_dir)
    os.makedirs(root, exist_ok=True)
    start = time.perf_counter()
    all_results = {
        seed: run_seed(root, seed, args.epochs, args.verbose)
        for seed in args.seeds
    }
    table = format_table(all_results)
    plot_path = osp.join(root, 'val_accuracy.png')
    save_plot(all_results, plot_path)
    json_path = osp.join(root, 'results.json')
    with open(json_path, 'w') as f:
        json.dump({str(k): v for k, v in all_results.items()}, f, indent=2)
    with open(osp.join(root, 'results.txt'), 'w') as f:
        f.write(table + '\n')
    print()
    print(table)
    print()
    print(f'[demo] total time {time.perf_counter() - start:.1f} s')
    print(f'[demo] plot of val accuracy per epoch: {plot_path}')
    print(f'[demo] per-epoch accuracies: {json_path}; runs under {root}')
    return all_results


if __name__ == '__main__':
    main()
