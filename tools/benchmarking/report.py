"""What the benchmark prints, and the JSON it writes."""
import json
import platform
from typing import Dict, Optional

import torch

CASE_TITLES = dict(
    student='(a) student step',
    distill='(b) distillation step',
    teacher='(c) teacher, taps only',
    teacher_loss='(d) teacher, loss mode')


def _mib(value: Optional[float]) -> str:
    return 'n/a' if value is None else f'{value:.1f}'


def last_line(err: Exception) -> str:
    """A failed task's one-line summary: the error's type and last line."""
    lines = str(err).strip().splitlines()
    return f'{type(err).__name__}: {lines[-1] if lines else ""}'


def device_name(device: str) -> str:
    """The GPU's or the CPU's model name."""
    if device.startswith('cuda'):
        return torch.cuda.get_device_name(torch.device(device))
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def print_header(results: dict) -> None:
    """The machine and the settings the numbers below hold for."""
    settings = results['settings']
    precision = 'bf16 autocast' if settings['amp'] else 'fp32'
    print(f'{results["device_name"]} ({results["device"]}), torch '
          f'{torch.__version__}, {torch.get_num_threads()} threads, '
          f'student {precision}, median of {settings["steps"]} steps after '
          f'{settings["warmup"]} warm-up')


def print_tasks(tasks: Dict[str, dict]) -> None:
    """Time and peak memory of every case, then the ratios of each task;
    failed tasks first, with their error."""
    print(f'{"task":<26} {"input":<15} {"case":<24} {"ms/step":>9} '
          f'{"peak MiB":>9}')
    failed = {name: res for name, res in tasks.items() if 'error' in res}
    tasks = {name: res for name, res in tasks.items() if name not in failed}
    for name, res in failed.items():
        print(f'{name:<26} failed: {res["error"]}')
    for name, res in tasks.items():
        shape = 'x'.join(map(str, res['input']))
        for case, r in res['cases'].items():
            print(f'{name:<26} {shape:<15} {CASE_TITLES[case]:<24} '
                  f'{r["ms"]:>9.1f} {_mib(r["peak_mib"]):>9}')
            name = shape = ''
    print(f'\n{"ratios":<26} {"b/(a+c)":>9} {"b/a":>9} {"d/c":>9}')
    for name, res in tasks.items():
        ratio = res['ratios'].get('d/c')
        print(f'{name:<26} {res["ratios"]["b/(a+c)"]:>9.2f} '
              f'{res["ratios"]["b/a"]:>9.2f} '
              f'{"-" if ratio is None else f"{ratio:.2f}":>9}')


def print_dist(res: dict) -> None:
    """Plain vs memory-lean dense DIST: time, peak memory, differences."""
    shape = 'x'.join(map(str, res['shape']))
    print(f'\ndense DIST (sigmoid) forward + backward on {shape}')
    print(f'{"variant":<12} {"ms":>9} {"peak MiB":>9}')
    for variant in ('plain', 'lean'):
        r = res[variant]
        print(f'{variant:<12} {r["ms"]:>9.1f} {_mib(r["peak_mib"]):>9}')
    ratio = res['peak_ratio']
    print(f'lean / plain peak memory: '
          f'{"n/a" if ratio is None else f"{ratio:.2f}"}; value '
          f'{res["value"]:.6f}, |difference| {res["value_diff"]:.1e}; '
          f'max |gradient difference| {res["grad_max_diff"]:.1e}')


def write_json(results: dict, path: str) -> None:
    """The results, as ``--json`` keeps them for later comparison."""
    with open(path, 'w') as f:
        json.dump(results, f, indent=2)
