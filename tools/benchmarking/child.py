"""One case in a fresh process: on the CPU, the only clean peak RSS (the
allocator keeps what earlier cases freed resident)."""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys

# tools/benchmark.py, which runs ``--case`` in the child.
SCRIPT = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), 'benchmark.py')
RESULT_TAG = 'BENCHMARK_RESULT '
# glibc's malloc raises its mmap threshold after the first large free and
# then keeps freed tensors in the heap: RSS would show earlier calls'
# memory as the step's. A fixed threshold maps every tensor above 128 KiB
# and unmaps it when freed.
MALLOC_ENV = {
    'MALLOC_MMAP_THRESHOLD_': str(128 * 1024),
    'MALLOC_TRIM_THRESHOLD_': str(128 * 1024),
}


def run_child(spec: str, args: argparse.Namespace) -> dict:
    """Run one case in a fresh Python process; return its result."""
    cmd = [sys.executable, SCRIPT, '--case', spec]
    for option in ('device', 'scale', 'steps', 'warmup', 'batch', 'threads'):
        value = getattr(args, option)
        if value is not None:
            cmd += [f'--{option}', str(value)]
    if args.amp:
        cmd.append('--amp')
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env={
            **os.environ,
            **MALLOC_ENV
        })
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    raise RuntimeError(f'benchmark case {spec} failed (exit code '
                       f'{proc.returncode}):\n{proc.stderr[-4000:]}')


def print_result(result: dict) -> None:
    """The child's side: the line ``run_child`` reads back."""
    print(RESULT_TAG + json.dumps(result), flush=True)
