"""The cases of a task or of dense DIST, measured here or each in a fresh
process, and their ratios."""
import argparse
import gc
from typing import Dict, List

import torch

from .child import run_child
from .data import dist_shape, make_batch
from .measure import measure
from .models import build_distiller
from .steps import case_fn, dist_fn
from .tasks import CASES, TASKS, scaled_size, split_name, task_cases


def _in_children(args: argparse.Namespace) -> bool:
    """Whether each case runs in a fresh process: on the CPU, for its peak
    RSS, unless ``--no-memory``."""
    return args.device == 'cpu' and not args.no_memory


def bench_task(name: str, cases: List[str],
               args: argparse.Namespace) -> Dict[str, dict]:
    """Build the task's Distiller once and measure ``cases`` in this
    process."""
    task, mode = split_name(name)
    task = TASKS[task]
    size = scaled_size(task.size, args.scale)
    model = build_distiller(task, size, args.device, mode)
    batch = make_batch(task.kind, args.batch or task.batch, size)
    data = model.data_preprocessor(batch, True)
    results = {}
    for case in cases:
        fn = case_fn(model, case, data['inputs'], data['data_samples'],
                     args.amp)
        results[case] = measure(
            fn, args.steps, args.warmup, args.device, memory=bool(args.case))
        del fn
    del model, data
    gc.collect()
    if args.device.startswith('cuda'):
        torch.cuda.empty_cache()
    return results


def run_task(name: str, args: argparse.Namespace) -> dict:
    """All cases of a task, with the ratios; on the CPU (unless
    ``--no-memory``) each case in a fresh process."""
    cases = task_cases(name)
    if _in_children(args):
        results = {case: run_child(f'{name}:{case}', args) for case in cases}
    else:
        results = bench_task(name, cases, args)
    task = TASKS[split_name(name)[0]]
    size = scaled_size(task.size, args.scale)
    ms = {case: r['ms'] for case, r in results.items()}
    ratios = {
        'b/(a+c)': ms['distill'] / (ms['student'] + ms['teacher']),
        'b/a': ms['distill'] / ms['student']
    }
    if 'teacher_loss' in ms:
        ratios['d/c'] = ms['teacher_loss'] / ms['teacher']
    return dict(
        config=task.config,
        input=[args.batch or task.batch, 3, *size],
        cases={case: results[case]
               for case in CASES if case in results},
        ratios=ratios)


def bench_dist(variant: str, args: argparse.Namespace) -> dict:
    """Time (and, in a child, peak memory of) one dense DIST variant."""
    fn = dist_fn(variant, args.scale, args.device)
    return measure(fn, args.steps, args.warmup, args.device, bool(args.case))


def run_dist_memory(args: argparse.Namespace) -> dict:
    """Plain vs memory-lean DIST: value and gradient differences, time and
    peak memory of each (each in a fresh process on the CPU)."""
    plain_value, plain_grad = dist_fn('plain', args.scale, args.device)()
    lean_value, lean_grad = dist_fn('lean', args.scale, args.device)()
    result = dict(
        shape=list(dist_shape(args.scale)),
        value=plain_value.item(),
        value_diff=(plain_value - lean_value).abs().item(),
        grad_max_diff=(plain_grad - lean_grad).abs().max().item())
    del plain_grad, lean_grad
    for variant in ('plain', 'lean'):
        if _in_children(args):
            result[variant] = run_child(f'dist:{variant}', args)
        else:
            result[variant] = bench_dist(variant, args)
    peaks = result['plain']['peak_mib'], result['lean']['peak_mib']
    result['peak_ratio'] = peaks[1] / peaks[0] if all(peaks) else None
    return result


def run_case(spec: str, args: argparse.Namespace) -> dict:
    """``--case task:case`` or ``dist:variant``, in this process."""
    name, case = spec.split(':')
    if name == 'dist':
        return bench_dist(case, args)
    return bench_task(name, [case], args)[case]
