"""Speed and memory of DIST distillation against its floor.

Builds the real Distillers of our configs with random weights (no
checkpoint, nothing downloaded) and random data of the real input size, and
measures per training step, after warm-up (median of ``--steps``):

- ``student``: the student's own losses, backward and SGD step (a);
- ``distill``: the Distiller's losses (student + teacher + DIST), backward
  and step (b);
- ``teacher``: the teacher alone, as the taps need it (``run_teacher``) (c);
- ``teacher_loss`` (detection only): the teacher in full ``loss`` mode under
  ``no_grad``, as older distillation toolboxes run it (d);

and the ratios b / (a + c) (1.00 is the floor: distillation costs the
student's step plus the teacher's inference) and d / c.

Peak memory is the most a case held above what was held before it started
(the models, the batch): activations, gradients, optimizer state and
temporaries. On CUDA it comes from ``torch.cuda.max_memory_allocated``. On
the CPU it is the growth of the peak RSS (``VmHWM``, restarted at the
case's start through ``/proc/self/clear_refs``; ``ru_maxrss`` elsewhere) of
a fresh process per case, since the allocator keeps freed memory resident;
``--no-memory`` times every case in this process instead and shows n/a.
RSS also counts what glibc keeps for reuse within a case, which overstates
code that frees and reallocates (chunked DIST); ``MALLOC_MMAP_THRESHOLD_=
65536`` in the environment makes it track live tensors, at some cost in
speed.

``--amp`` runs every case under bf16 autocast, as MMEngine's AMP wraps the
whole forward; the teacher has its own ``teacher_autocast`` either way. (On
the CPU, Faster R-CNN fails under it: CPU autocast leaves the RPN's boxes in
bf16 and mmcv's nms takes fp32 only. A failing task is reported, the others
still run.)
``--dist-memory`` adds (or, without ``--tasks``, only runs) plain vs
memory-lean dense DIST, sigmoid, forward + backward on a RetinaNet P3-sized
map. ``--scale`` multiplies every image side (rounded to a multiple of 32,
at least 32) and the sides of that map; ``--batch`` replaces every task's
batch size. On a busy CPU, ``--threads 1`` can be much faster than more.
Examples::

    python tools/benchmark.py --device cuda --amp --dist-memory --json b.json
    python tools/benchmark.py --scale 0.25 --batch 2 --steps 3 --warmup 1
    python tools/benchmark.py --dist-memory --scale 1
"""
import argparse
import sys
import traceback
from typing import List, Optional

import torch
from benchmarking import cases, child, report
from benchmarking.tasks import TASKS, TEACHER_MODES, run_names


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The options above; ``--case`` is the fresh process's (see
    ``benchmarking.child``)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n', 2)[2])
    parser.add_argument(
        '--tasks',
        nargs='+',
        choices=list(TASKS),
        help='tasks to run (default: all, or none with --dist-memory)')
    parser.add_argument(
        '--dist-memory',
        action='store_true',
        help='compare plain and memory-lean DIST on a RetinaNet P3 map')
    parser.add_argument(
        '--scale', type=float, default=1.0, help='image side multiplier')
    parser.add_argument('--batch', type=int, help='images per step')
    parser.add_argument('--steps', type=int, default=10, help='timed steps')
    parser.add_argument('--warmup', type=int, default=3, help='untimed steps')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='bf16 autocast, as the student\'s AMP training')
    parser.add_argument(
        '--device',
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='cpu or cuda (default: cuda when available)')
    parser.add_argument(
        '--threads', type=int, help='CPU threads (default: torch\'s own)')
    parser.add_argument(
        '--no-memory',
        action='store_true',
        help='on the CPU, time every case in this process; no memory')
    parser.add_argument(
        '--teacher-modes',
        nargs='+',
        choices=TEACHER_MODES,
        default=['eager'],
        help="the teacher's speed-ups to measure, each a run of every task "
        '(default: eager)')
    parser.add_argument('--json', help='also write the results here')
    # Internal: run one case in this (fresh) process, print its result.
    parser.add_argument('--case', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tasks is None:
        args.tasks = [] if args.dist_memory else list(TASKS)
    if args.scale <= 0 or args.steps < 1 or args.warmup < 0:
        parser.error('--scale should be > 0, --steps >= 1, --warmup >= 0')
    for option in ('batch', 'threads'):
        if getattr(args, option) is not None and getattr(args, option) < 1:
            parser.error(f'--{option} should be >= 1')
    return args


def run(args: argparse.Namespace) -> dict:
    """Every run of ``--tasks`` x ``--teacher-modes`` (a failing one is
    reported and the others still run), then dense DIST if asked."""
    results = dict(
        device=args.device,
        device_name=report.device_name(args.device),
        torch=torch.__version__,
        settings=dict(
            scale=args.scale,
            batch=args.batch,
            steps=args.steps,
            warmup=args.warmup,
            amp=args.amp,
            teacher_modes=args.teacher_modes),
        tasks={})
    for name in run_names(args.tasks, args.teacher_modes):
        print(f'running {name} ...', file=sys.stderr, flush=True)
        try:
            results['tasks'][name] = cases.run_task(name, args)
        except Exception as err:  # report it, go on with the other tasks
            traceback.print_exc()
            results['tasks'][name] = dict(error=report.last_line(err))
    if args.dist_memory:
        print('running dense DIST ...', file=sys.stderr, flush=True)
        results['dist_memory'] = cases.run_dist_memory(args)
    return results


def main(argv: Optional[List[str]] = None) -> dict:
    """Run, print and (with ``--json``) save; return the results."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith('cuda'):
        # Fixed input sizes: let cuDNN pick its fastest kernels.
        torch.backends.cudnn.benchmark = True
    if args.case:
        child.print_result(cases.run_case(args.case, args))
        return {}
    results = run(args)
    report.print_header(results)
    if results['tasks']:
        report.print_tasks(results['tasks'])
    if args.dist_memory:
        report.print_dist(results['dist_memory'])
    if args.json:
        report.write_json(results, args.json)
    return results


if __name__ == '__main__':
    main()
