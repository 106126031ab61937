"""Smoke tests of tools/benchmark.py and tools/gpu_check.sh (no timings
are asserted: the numbers of a tiny CPU run mean nothing)."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from distkd_testing import REPO

BENCHMARK = osp.join(REPO, 'tools', 'benchmark.py')
GPU_CHECK = osp.join(REPO, 'tools', 'gpu_check.sh')
# One thread: on a busy 2-core machine two OpenMP threads per process can
# be many times slower than one.
TINY = [
    '--scale', '0.1', '--batch', '2', '--steps', '1', '--warmup', '0',
    '--threads', '1'
]


def run_benchmark(*args: str) -> str:
    proc = subprocess.run([sys.executable, BENCHMARK, *args],
                          cwd=REPO,
                          capture_output=True,
                          text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope='module')
def benchmark():
    spec = importlib.util.spec_from_file_location('benchmark', BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_task_builds_and_steps(tmp_path):
    out = tmp_path / 'bench.json'
    stdout = run_benchmark('--no-memory', *TINY, '--json', str(out))
    results = json.loads(out.read_text())
    assert results['device'] == 'cpu'
    assert set(results['tasks']) == {
        'cls', 'retinanet', 'faster-rcnn', 'seg', 'seg-psp'
    }
    for name, res in results['tasks'].items():
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
    # Scaled sides are multiples of 32: 224 * 0.1 -> 32, 800x1216 -> 96x128.
    assert results['tasks']['cls']['input'] == [2, 3, 32, 32]
    assert results['tasks']['faster-rcnn']['input'] == [2, 3, 96, 128]
    assert 'b/(a+c)' in stdout and '(d) teacher, loss mode' in stdout


def test_cpu_case_runs_in_a_fresh_process_and_measures_memory():
    stdout = run_benchmark('--case', 'cls:student', '--device', 'cpu', *TINY)
    line = [ln for ln in stdout.splitlines() if ln.startswith('BENCHMARK')]
    result = json.loads(line[-1].split(' ', 1)[1])
    # Gradients and SGD momentum of ResNet-18 alone are ~90 MiB.
    assert result['ms'] > 0 and result['peak_mib'] > 40


def test_dist_memory_lean_equals_plain_with_less_memory(tmp_path):
    out = tmp_path / 'dist.json'
    stdout = run_benchmark('--dist-memory', '--scale', '0.25', '--steps',
                           '1', '--warmup', '0', '--threads', '1', '--json',
                           str(out))
    res = json.loads(out.read_text())['dist_memory']
    assert res['shape'] == [2, 720, 25, 42]
    assert res['value_diff'] < 1e-5 and res['grad_max_diff'] < 1e-6
    assert res['plain']['peak_mib'] > 0 and res['lean']['peak_mib'] > 0
    assert 0 < res['peak_ratio'] < 1
    assert 'lean / plain peak memory' in stdout


def test_scaled_size_and_pretrained_stripping(benchmark):
    assert benchmark.scaled_size((224, 224), 1) == (224, 224)
    assert benchmark.scaled_size((800, 1216), 0.25) == (192, 320)
    assert benchmark.scaled_size((512, 1024), 0.01) == (32, 32)
    cfg = dict(
        pretrained='open-mmlab://resnet18_v1c',
        backbone=dict(
            init_cfg=dict(type='Pretrained', checkpoint='torchvision://r50')),
        heads=[dict(init_cfg=dict(type='Normal', std=0.01))])
    benchmark._strip_pretrained(cfg)
    assert cfg['pretrained'] is None and cfg['backbone']['init_cfg'] is None
    assert cfg['heads'][0]['init_cfg'] == dict(type='Normal', std=0.01)


def test_benchmark_rejects_bad_options():
    proc = subprocess.run([sys.executable, BENCHMARK, '--scale', '0'],
                          capture_output=True,
                          text=True)
    assert proc.returncode == 2 and '--scale' in proc.stderr


def run_gpu_check(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(['bash', GPU_CHECK, *args],
                          cwd=REPO,
                          capture_output=True,
                          text=True,
                          env={
                              **os.environ, 'OUT': env.pop('OUT', ''),
                              **env
                          })


def test_gpu_check_syntax_and_dry_run(tmp_path):
    assert subprocess.run(['bash', '-n', GPU_CHECK]).returncode == 0
    wheels = tmp_path / 'wheels'
    wheels.mkdir()
    for name in ('mmengine-0.10.7-py3-none-any.whl',
                 'mmdet-3.3.0-py3-none-any.whl',
                 'mmsegmentation-1.2.2-py3-none-any.whl',
                 'mmpretrain-1.2.0-py2.py3-none-any.whl',
                 'addict-2.4.0-py3-none-any.whl',
                 'yapf-0.43.0-py3-none-any.whl',
                 'termcolor-3.3.0-py3-none-any.whl',
                 'terminaltables-3.1.10-py2.py3-none-any.whl',
                 'mat4py-0.6.0-py2.py3-none-any.whl',
                 'modelindex-0.0.2-py3-none-any.whl',
                 'ordered_set-4.1.0-py3-none-any.whl',
                 'prettytable-3.18.0-py3-none-any.whl',
                 'ftfy-6.3.1-py3-none-any.whl',
                 'regex-2026.1.1-cp312-cp312-manylinux2014_x86_64.whl',
                 'shapely-2.2.0-cp312-cp312-manylinux_2_28_x86_64.whl',
                 'pycocotools-2.0.11-cp312-abi3-manylinux2014_x86_64.whl',
                 'setuptools-80.10.2-py3-none-any.whl', 'mmcv-2.1.0.tar.gz'):
        (wheels / name).touch()
    out = str(tmp_path / 'out')
    proc = run_gpu_check('--dry-run', str(wheels), OUT=out)
    assert proc.returncode == 0, proc.stderr
    assert 'warning' not in proc.stderr
    assert 'MMCV_WITH_OPS=1 FORCE_CUDA=1' in proc.stdout
    assert 'tools/benchmark.py --device cuda --amp --dist-memory' in (
        proc.stdout)
    assert not osp.exists(out)  # a dry run creates nothing
    # A missing wheel is named, and stops a real run before anything.
    (wheels /
     'pycocotools-2.0.11-cp312-abi3-manylinux2014_x86_64.whl').unlink()
    proc = run_gpu_check(str(wheels), OUT=out)
    assert proc.returncode == 1
    assert 'pycocotools-*cp312*.whl' in proc.stderr
    assert '--fetch-wheels' in proc.stderr and not osp.exists(out)
