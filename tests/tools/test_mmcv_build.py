"""The mmcv build decision of .dev_scripts/mmcv_build.py (what
.dev_scripts/setup_env.sh builds), from fake torch facts and fake CUDA
toolkits: nothing is built."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from distkd_testing import REPO, load_tool

MMCV_BUILD = osp.join(REPO, '.dev_scripts', 'mmcv_build.py')
SETUP_ENV = osp.join(REPO, '.dev_scripts', 'setup_env.sh')


@pytest.fixture(scope='module')
def mb():
    return load_tool(MMCV_BUILD)


def facts(mb,
          version='2.14.1',
          cuda='13.0',
          gpus=(),
          tag='cp311',
          torch_archs=('sm_80', 'sm_90', 'sm_100', 'compute_120')):
    return mb.TorchFacts(
        torch_version=version,
        cuda_version=cuda,
        python_tag=tag,
        gpu_archs=[arch for _, arch in gpus],
        gpu_names=[name for name, _ in gpus],
        torch_archs=list(torch_archs) if cuda else [])


H100 = ('NVIDIA H100', '9.0')
A100 = ('NVIDIA A100', '8.0')


def fake_toolkit(root, release: str, headers: bool = True) -> str:
    """A folder with an executable bin/nvcc that reports ``release``."""
    os.makedirs(osp.join(root, 'bin'))
    nvcc = osp.join(root, 'bin', 'nvcc')
    with open(nvcc, 'w') as f:
        f.write('#!/bin/sh\necho "Cuda compilation tools, release '
                f'{release}, V{release}.1"\n')
    os.chmod(nvcc, 0o755)
    if headers:
        os.makedirs(osp.join(root, 'include'))
        open(osp.join(root, 'include', 'cuda_runtime.h'), 'w').close()
    return str(root)


def test_cpu_torch_builds_cpu_ops(mb):
    plan = mb.make_plan(facts(mb, '2.14.1+cpu', None), {}, None)
    assert not plan.cuda
    assert plan.summary.startswith(f'mmcv {mb.MMCV_VERSION} with CPU ops')
    assert 'CPU ops only: torch 2.14.1+cpu is a CPU build' in plan.summary
    assert plan.cache_key == 'torch-2.14.1+cpu-cpu-ops-cpu-cp311'
    assert plan.cxx_std == 'c++20'
    assert plan.build_env() == {
        'MMCV_WITH_OPS': '1',
        'FORCE_CUDA': '0',
        'CUDA_VISIBLE_DEVICES': ''
    }


def test_cuda_torch_without_gpu_stays_cpu_ops(mb, tmp_path):
    # The CI machine: a CUDA build of torch and a toolkit, but no GPU.
    toolkit = mb.Nvcc(fake_toolkit(tmp_path / 'cuda', '13.0'), '13.0')
    plan = mb.make_plan(facts(mb), {}, toolkit)
    assert not plan.cuda and not plan.pip_nvcc
    assert 'no GPU is visible' in plan.summary
    assert 'MMCV_CUDA=1' in plan.summary
    assert plan.cache_key == 'torch-2.14.1-cu13.0-ops-cpu-cp311'


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has a GPU')
def test_this_machine_plans_cpu_ops_by_default():
    env = {k: v for k, v in os.environ.items() if k != 'MMCV_CUDA'}
    out = subprocess.run([sys.executable, MMCV_BUILD, 'plan', '--shell'],
                         env=env,
                         capture_output=True,
                         text=True,
                         check=True).stdout
    assert 'PLAN_CUDA=0\n' in out
    assert "PLAN_CACHE_KEY=torch-{}-".format(torch.__version__) in out


def test_gpu_and_matching_system_nvcc(mb, tmp_path):
    home = fake_toolkit(tmp_path / 'cuda-13.0', '13.0')
    gpus = (H100, A100, H100)
    plan = mb.make_plan(
        facts(mb, '2.11.0+cu130', gpus=gpus, tag='cp312'), {},
        mb.Nvcc(home, '13.0'))
    assert plan.cuda and plan.cuda_home == home and not plan.pip_nvcc
    assert plan.arch_list == '8.0;9.0'
    assert 'the visible GPUs (NVIDIA A100, NVIDIA H100)' in plan.summary
    assert plan.cxx_std == 'c++17'
    assert plan.cache_key == ('torch-2.11.0+cu130-cu13.0-ops-cu13.0-sm80_90-'
                              'cp312')
    assert plan.build_env() == {
        'MMCV_WITH_OPS': '1',
        'FORCE_CUDA': '1',
        'TORCH_CUDA_ARCH_LIST': '8.0;9.0',
        'CUDA_HOME': home
    }


def test_other_cuda_major_or_no_toolkit_takes_nvcc_from_pypi(mb, tmp_path):
    old = mb.Nvcc(fake_toolkit(tmp_path / 'cuda-12.4', '12.4'), '12.4')
    plan = mb.make_plan(facts(mb, gpus=(H100, )), {}, old)
    assert plan.cuda and plan.cuda_home == ''
    assert plan.pip_nvcc == [
        'nvidia-cuda-nvcc==13.0.*', 'nvidia-cuda-crt==13.0.*',
        'nvidia-nvvm==13.0.*', 'nvidia-cuda-runtime==13.0.*',
        'nvidia-cuda-cccl==13.0.*'
    ]
    assert 'the system nvcc 12.4' in plan.summary
    assert 'does not match' in plan.summary
    plan = mb.make_plan(
        facts(mb, '2.8.0+cu128', '12.8', gpus=(A100, )), {}, None)
    assert plan.pip_nvcc == [
        'nvidia-cuda-nvcc-cu12==12.8.*', 'nvidia-cuda-runtime-cu12==12.8.*',
        'nvidia-cuda-cccl-cu12==12.8.*'
    ]
    assert 'no CUDA toolkit on this machine' in plan.summary
    with pytest.raises(mb.PlanError, match='CUDA 11 toolkit'):
        mb.make_plan(facts(mb, '2.5.1+cu118', '11.8', gpus=(A100, )), {}, None)


def test_env_overrides(mb):
    gpu = facts(mb, gpus=(H100, ))
    plan = mb.make_plan(gpu, {'MMCV_CUDA': '0'}, None)
    assert not plan.cuda and 'MMCV_CUDA=0' in plan.summary
    # A login node: no GPU, CUDA ops forced, archs from torch's own list.
    plan = mb.make_plan(facts(mb), {'MMCV_CUDA': '1'}, None)
    assert plan.cuda and plan.arch_list == '8.0;9.0;10.0;12.0+PTX'
    assert 'the archs torch was built for' in plan.summary
    plan = mb.make_plan(gpu, {'TORCH_CUDA_ARCH_LIST': '9.0a'}, None)
    assert plan.arch_list == '9.0a' and 'from TORCH_CUDA_ARCH_LIST' in \
        plan.summary
    assert plan.cache_key.endswith('-ops-cu13.0-sm90a-cp311')
    with pytest.raises(mb.PlanError, match='CPU build; install a CUDA'):
        mb.make_plan(facts(mb, '2.14.1+cpu', None), {'MMCV_CUDA': '1'}, None)
    with pytest.raises(
            mb.PlanError, match="should be 0, 1 or unset, but "
            "got 'yes'"):
        mb.make_plan(gpu, {'MMCV_CUDA': 'yes'}, None)
    with pytest.raises(mb.PlanError, match='TORCH_CUDA_ARCH_LIST'):
        mb.make_plan(facts(mb, torch_archs=()), {'MMCV_CUDA': '1'}, None)


def test_cache_key_separates_every_input(mb):
    base = facts(mb, gpus=(H100, ))
    keys = {
        mb.make_plan(f, env, None).cache_key
        for f, env in [
            (base, {}),
            (base, {
                'MMCV_CUDA': '0'
            }),
            (facts(mb, '2.14.0', gpus=(H100, )), {}),
            (facts(mb, cuda='13.1', gpus=(H100, )), {}),
            (facts(mb, gpus=(A100, )), {}),
            (facts(mb, gpus=(H100, ), tag='cp312'), {}),
            (base, {
                'TORCH_CUDA_ARCH_LIST': '9.0+PTX'
            }),
        ]
    }
    assert len(keys) == 7


def test_cxx_standard_and_supported_torch(mb):
    assert mb.cxx_standard('2.11.0+cu130') == 'c++17'
    assert mb.cxx_standard('2.13.0+cpu') == 'c++17'
    assert mb.cxx_standard('2.14.1') == 'c++20'
    assert mb.cxx_standard('2.15.0.dev20261101') == 'c++20'
    # The floor of requirements/stack.txt (torch.serialization.safe_globals).
    assert mb.MIN_TORCH == '2.5'
    with pytest.raises(mb.PlanError, match=r'should be >= 2.5, but got 2.4'):
        mb.make_plan(facts(mb, '2.4.1', gpus=(H100, )), {}, None)
    assert mb.make_plan(facts(mb, '2.5.0', '12.4', gpus=(H100, )), {},
                        None).cuda


def test_find_system_nvcc(mb, tmp_path):
    nowhere = str(tmp_path / 'no-cuda')
    # nvcc on PATH inside a toolkit.
    home = fake_toolkit(tmp_path / 'cuda-12.6', '12.6')
    found = mb.find_system_nvcc({'PATH': f'{home}/bin'}, nowhere)
    assert found == mb.Nvcc(home, '12.6')
    # CUDA_HOME wins over PATH.
    other = fake_toolkit(tmp_path / 'cuda-13.0', '13.0')
    found = mb.find_system_nvcc({
        'PATH': f'{home}/bin',
        'CUDA_HOME': other
    }, nowhere)
    assert found.version == '13.0'
    # A wrapper script on PATH (no headers beside it) is no toolkit; the
    # default location then is.
    wrapper = fake_toolkit(tmp_path / 'wrap', '13.0', headers=False)
    env = {'PATH': f'{wrapper}/bin'}
    assert mb.find_system_nvcc(env, nowhere) is None
    assert mb.find_system_nvcc(env, other).cuda_home == other


def _touch(path: str, mode: int = 0o644) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    open(path, 'w').close()
    os.chmod(path, mode)


@pytest.mark.parametrize('layout', ['cu13', 'cu12'])
def test_assemble_cuda_home(mb, tmp_path, layout):
    venv, system = tmp_path / 'venv' / 'nvidia', tmp_path / 'sys' / 'nvidia'
    if layout == 'cu13':
        _touch(f'{venv}/cu13/bin/nvcc', 0o755)
        _touch(f'{venv}/cu13/nvvm/bin/cicc', 0o755)
        _touch(f'{venv}/cu13/include/crt/host_config.h')
        _touch(f'{system}/cu13/include/cuda_runtime.h')
        _touch(f'{system}/cu13/include/cusparse.h')
        _touch(f'{system}/cu13/lib/libcudart.so.13')
    else:
        _touch(f'{venv}/cuda_nvcc/bin/nvcc', 0o755)
        _touch(f'{venv}/cuda_nvcc/nvvm/bin/cicc', 0o755)
        _touch(f'{venv}/cuda_runtime/include/cuda_runtime.h')
        _touch(f'{venv}/cuda_runtime/lib/libcudart.so.12')
        _touch(f'{system}/cusparse/include/cusparse.h')
    dest = str(tmp_path / 'cuda')
    assert mb.assemble_cuda_home([str(venv), str(system)], dest) == dest
    for name in ('bin/nvcc', 'nvvm/bin/cicc', 'include/cuda_runtime.h',
                 'include/cusparse.h', 'lib64/libcudart.so'):
        assert osp.isfile(osp.join(dest, name)), name
    # Again over an existing one (a second `make env`).
    mb.assemble_cuda_home([str(venv), str(system)], dest)
    assert osp.isfile(osp.join(dest, 'bin', 'nvcc'))
    with pytest.raises(mb.PlanError, match='nvidia-cuda-nvcc'):
        mb.assemble_cuda_home([str(system)], str(tmp_path / 'x'))


def test_shell_assignments_round_trip(mb):
    plan = mb.make_plan(facts(mb, gpus=(H100, )), {}, None)
    plan.summary += " (it's \"quoted\"; $HOME `x`)"
    # mmcv's own switches, exported as setup_env.sh evaluates them.
    script = mb.shell_assignments(plan) + 'eval "$PLAN_BUILD_ENV"; ' + \
        'printf "%s\\n" "$PLAN_SUMMARY" "$PLAN_PIP_NVCC" "$PLAN_ARCH_LIST"' + \
        ' "$MMCV_WITH_OPS$FORCE_CUDA" "$TORCH_CUDA_ARCH_LIST"'
    out = subprocess.run(['bash', '-c', script],
                         capture_output=True,
                         text=True,
                         check=True).stdout.splitlines()
    assert out == [plan.summary, ' '.join(plan.pip_nvcc), '9.0', '11', '9.0']


def test_plan_command_reports_errors_in_its_own_words(mb, monkeypatch, capsys):
    monkeypatch.setenv('MMCV_CUDA', 'maybe')
    assert mb.main(['plan']) == 2  # the script's exit code
    assert capsys.readouterr().err.startswith(
        'mmcv_build: error: `MMCV_CUDA` should')


def test_setup_env_options(tmp_path):

    def setup(*args, venv=tmp_path / 'venv'):
        return subprocess.run(['bash', SETUP_ENV, *args],
                              env=dict(os.environ, DISTKD_VENV=str(venv)),
                              capture_output=True,
                              text=True)

    proc = setup('--help')
    assert proc.returncode == 0 and '--system-torch' in proc.stdout
    proc = setup('--bogus')
    assert proc.returncode == 1 and 'unknown option --bogus' in proc.stderr
    proc = setup('--find-links', str(tmp_path / 'missing'))
    assert 'is not a folder' in proc.stderr
    # --system-torch refuses a venv made without system site packages
    # (it would install a second torch into it).
    venv = tmp_path / 'plain'
    _touch(str(venv / 'bin' / 'python'), 0o755)
    (venv / 'pyvenv.cfg').write_text('include-system-site-packages = false\n')
    proc = setup('--system-torch', venv=venv)
    assert proc.returncode == 1
    assert 'was made without --system-torch' in proc.stderr


def test_headless_opencv_keeps_every_other_dependency(mb):
    requires = [
        'addict', 'opencv-python>=3', 'mmcv (<2.2.0,>=2.0.0rc4)',
        'regex ; sys_platform == "win32"', 'pytest ; extra == "tests"',
        'mmengine>=0.7.1', 'Shapely', 'torch>=1.8'
    ]
    assert mb.dependencies_without_opencv(requires) == [
        'Shapely', 'addict', 'regex;sys_platform=="win32"'
    ]


def test_openmmlab_dependencies_without_opencv(mb):
    # What --system-torch installs after `pip install --no-deps` when the
    # machine's OpenCV is another distribution (opencv-python-headless).
    requires = [
        'addict', 'opencv-python >=3', 'numpy (<2.0,>=1.19)',
        'mmcv <2.2.0,>=2.0.0rc4', 'torch', 'pytest ; extra == "tests"',
        'importlib-metadata ; python_version < "3.10"', 'Opencv_Python'
    ]
    assert mb.dependencies_without_opencv(requires) == [
        'addict', 'importlib-metadata;python_version<"3.10"',
        'numpy<2.0,>=1.19'
    ]
    from importlib.metadata import requires as installed
    deps = mb.dependencies_without_opencv(installed('mmengine'))
    assert 'addict' in deps
    assert not any(d.lower().startswith('opencv') for d in deps)
