"""Smoke tests of tools/benchmark.py and .dev_scripts/gpu_check.sh (no
timings are asserted: the numbers of a tiny CPU run mean nothing)."""
import gc
import importlib
import json
import os
import os.path as osp
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from distkd_testing import REPO, load_tool

BENCHMARK = osp.join(REPO, 'tools', 'benchmark.py')
GPU_CHECK = osp.join(REPO, '.dev_scripts', 'gpu_check.sh')
# The smallest run: every side 32 or 64 (scale 0.05 rounds Faster R-CNN's
# 800x1216 to 32x64; anything smaller leaves its RPN no anchor inside the
# image). One thread: on a busy 2-core machine two OpenMP threads per
# process can be many times slower than one.
TINY = [
    '--scale', '0.05', '--batch', '2', '--steps', '1', '--warmup', '0',
    '--threads', '1'
]


@pytest.fixture(scope='module')
def benchmarking():
    """The package of cases, imported as tools/benchmark.py imports it."""
    return load_tool('benchmarking')


@pytest.fixture(scope='module')
def benchmark(benchmarking):
    """tools/benchmark.py, run in this process by its ``main(argv)``."""
    return load_tool('benchmark')


@pytest.fixture
def run_benchmark(benchmark, capsys):
    """``main(argv)`` of tools/benchmark.py: its results and its stdout;
    torch's thread count (``--threads``) is restored afterwards.

    The objects that exist before it runs are frozen out of the garbage
    collector: the benchmark collects before every case, and each full
    collection of this process (every module the tests imported) would
    take most of a second; what the benchmark leaves is still collected.
    """
    threads = torch.get_num_threads()

    def run(*argv: str):
        gc.freeze()
        try:
            results = benchmark.main(list(argv))
        finally:
            gc.unfreeze()
        return results, capsys.readouterr().out

    yield run
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def fresh_processes(benchmark, benchmarking, tmp_path_factory):
    """The CPU cases that run in fresh processes, for their peak memory,
    started in the background to run beside the in-process tests: a task's
    case through ``run_child`` (tools/benchmark.py ``--case`` in a new
    interpreter, its printed result read back), and ``--dist-memory`` on
    the command line (its plain and lean dense DIST each in a fresh
    process too)."""
    run_child = importlib.import_module('benchmarking.child').run_child
    args = benchmark.parse_args(['--device', 'cpu', *TINY])
    out = tmp_path_factory.mktemp('dist_memory') / 'dist.json'
    dist = subprocess.Popen([
        sys.executable, BENCHMARK, '--dist-memory', '--scale', '0.25',
        '--steps', '1', '--warmup', '0', '--threads', '1', '--json',
        str(out)
    ],
                            cwd=REPO,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE,
                            text=True)
    done = {}

    def dist_memory():
        if 'dist' not in done:
            done['dist'] = dist.communicate(timeout=600)
        stdout, stderr = done['dist']
        assert dist.returncode == 0, stderr[-3000:]
        return json.loads(out.read_text()), stdout

    with ThreadPoolExecutor(1) as pool:
        student = pool.submit(run_child, 'cls:student', args)
        yield dict(student=student.result, dist_memory=dist_memory)
        if 'dist' not in done:
            dist.communicate(timeout=600)


@pytest.mark.slow
def test_every_task_builds_and_steps(tmp_path, run_benchmark, fresh_processes):
    # `fresh_processes`: started first, they run beside this long test.

    out = tmp_path / 'bench.json'
    returned, stdout = run_benchmark('--no-memory', *TINY, '--json', str(out))
    results = json.loads(out.read_text())
    assert results == returned
    assert results['device'] == 'cpu'
    assert set(results['tasks']) == {
        'cls', 'retinanet', 'faster-rcnn', 'seg', 'seg-psp'
    }
    for name, res in results['tasks'].items():
        assert 'error' not in res, (name, res)
        det = name in ('retinanet', 'faster-rcnn')
        expected = {'student', 'distill', 'teacher'}
        if det:
            expected.add('teacher_loss')
        assert set(res['cases']) == expected, name
        for case in res['cases'].values():
            assert case['ms'] > 0 and case['peak_mib'] is None
        assert res['ratios']['b/(a+c)'] > 0
        assert (res['ratios'].get('d/c', 0) > 0) == det
        assert res['input'][:2] == [2, 3]
    # Scaled sides are multiples of 32, at least 32: 224 * 0.05 -> 32,
    # 800x1216 -> 32x64.
    assert results['tasks']['cls']['input'] == [2, 3, 32, 32]
    assert results['tasks']['faster-rcnn']['input'] == [2, 3, 32, 64]
    assert 'b/(a+c)' in stdout and '(d) teacher, loss mode' in stdout


@pytest.mark.slow
def test_teacher_modes_run_the_task_again_with_a_folded_teacher(
        run_benchmark, benchmarking):
    run_names = importlib.import_module('benchmarking.tasks').run_names
    names = run_names(['cls', 'seg'], ['eager', 'fused'])
    assert names == ['cls', 'seg', 'cls@fused', 'seg@fused']
    # The eager run is test_every_task_builds_and_steps's.
    tasks, _ = run_benchmark('--no-memory', *TINY, '--tasks', 'cls',
                             '--teacher-modes', 'fused')
    tasks = tasks['tasks']
    assert set(tasks) == {'cls@fused'}
    assert set(
        tasks['cls@fused']['cases']) == {'student', 'teacher', 'distill'}
    assert tasks['cls@fused']['ratios']['b/a'] > 0


@pytest.mark.slow
def test_cpu_cases_run_in_fresh_processes_and_lean_dist_saves_memory(
        fresh_processes):
    student = fresh_processes['student']()
    # ResNet-18's gradients alone are ~45 MiB (set to None after each
    # step, so each step allocates them again).
    assert student['ms'] > 0 and student['peak_mib'] > 40

    results, stdout = fresh_processes['dist_memory']()
    assert results['tasks'] == {}  # --dist-memory alone runs no task
    res = results['dist_memory']
    assert res['shape'] == [2, 720, 25, 42]
    assert res['value_diff'] < 1e-5 and res['grad_max_diff'] < 1e-6
    assert res['plain']['peak_mib'] > 0 and res['lean']['peak_mib'] > 0
    assert 0 < res['peak_ratio'] < 0.8  # 0.56 measured at this scale
    assert 'lean / plain peak memory' in stdout


def test_scaled_size_and_pretrained_stripping(benchmarking):
    scaled_size = importlib.import_module('benchmarking.tasks').scaled_size
    assert scaled_size((224, 224), 1) == (224, 224)
    assert scaled_size((800, 1216), 0.25) == (192, 320)
    assert scaled_size((512, 1024), 0.01) == (32, 32)
    cfg = dict(
        pretrained='open-mmlab://resnet18_v1c',
        backbone=dict(
            init_cfg=dict(type='Pretrained', checkpoint='torchvision://r50')),
        heads=[dict(init_cfg=dict(type='Normal', std=0.01))])
    importlib.import_module('benchmarking.models').strip_pretrained(cfg)
    assert cfg['pretrained'] is None and cfg['backbone']['init_cfg'] is None
    assert cfg['heads'][0]['init_cfg'] == dict(type='Normal', std=0.01)


def test_benchmark_rejects_bad_options(benchmark, capsys):
    with pytest.raises(SystemExit) as exit_:
        benchmark.parse_args(['--scale', '0'])
    assert exit_.value.code == 2 and '--scale' in capsys.readouterr().err


def run_gpu_check(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(['bash', GPU_CHECK, *args],
                          cwd=REPO,
                          capture_output=True,
                          text=True,
                          env={
                              **os.environ, 'OUT': env.pop('OUT', ''),
                              **env
                          })


def test_gpu_check_dry_run_lists_the_stages_it_would_run(tmp_path):
    assert subprocess.run(['bash', '-n', GPU_CHECK]).returncode == 0
    wheels = tmp_path / 'wheels'
    wheels.mkdir()
    out = str(tmp_path / 'out')
    proc = run_gpu_check('--dry-run', str(wheels), OUT=out)
    assert proc.returncode == 0, proc.stderr
    assert ('.dev_scripts/setup_env.sh --system-torch --find-links '
            f'{wheels} --no-index') in proc.stdout
    assert '--teacher-modes eager fused fused+compiled' in proc.stdout
    assert 'tests/gpu/train_smoke.py' in proc.stdout
    assert not osp.exists(out)  # a dry run creates nothing
    proc = run_gpu_check(
        '--dry-run', '--stages', 'check bench', str(wheels), OUT=out)
    assert 'check_env.py' in proc.stdout and '--dist-memory' in proc.stdout
    assert 'setup_env.sh' not in proc.stdout
    assert 'train_smoke' not in proc.stdout


def test_gpu_check_names_the_fetch_command_for_a_missing_wheels_folder(
        tmp_path):
    proc = run_gpu_check(str(tmp_path / 'nowhere'), OUT=str(tmp_path / 'o'))
    assert proc.returncode == 1
    assert '.dev_scripts/fetch_wheels.sh' in proc.stderr
    assert not osp.exists(tmp_path / 'o')
