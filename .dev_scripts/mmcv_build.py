"""Decide how .dev_scripts/setup_env.sh builds mmcv, and say why.

mmcv ships as source only. Whether its ops get CUDA kernels, with
which compiler, for which GPU architectures and under which C++ standard
depends on the torch in the environment, the machine and a few
environment variables. The decision lives here, as plain functions of those
facts, so it can be tested without a GPU and without building anything.
Only the standard library is imported at module level: the script runs in a
venv that has torch but not yet mmcv, mmengine or distkd_mm.

Commands (run with the venv's python, which has torch):

    python .dev_scripts/mmcv_build.py plan [--shell]
        The build plan as JSON, or as shell assignments for setup_env.sh.
    python .dev_scripts/mmcv_build.py cuda-home DEST
        Assemble a CUDA_HOME (bin, nvvm, include, lib64) at DEST from the
        PyPI compiler packages (``nvidia-cuda-nvcc`` ...) this interpreter
        sees; prints DEST.

Environment read by ``plan``:
    MMCV_CUDA             1 builds CUDA ops (error when impossible), 0 CPU
                          ops only; unset (auto): CUDA ops when torch is a
                          CUDA build and a GPU is visible.
    TORCH_CUDA_ARCH_LIST  GPU architectures to compile for, e.g.
                          "8.0;9.0"; default: those of the visible GPUs,
                          else the ones torch itself was built for.
    CUDA_HOME, CUDA_PATH  the CUDA toolkit to use (else nvcc on PATH, else
                          /usr/local/cuda).
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple


def _load_stack():
    # requirements/stack.py by path: this script runs before distkd_mm (or
    # anything but torch) is installed.
    path = osp.join(
        osp.dirname(osp.dirname(osp.abspath(__file__))), 'requirements',
        'stack.py')
    spec = importlib.util.spec_from_file_location('_distkd_stack', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_stack = _load_stack()
version_tuple = _stack.version_tuple
_STACK = _stack.read_stack()
MMCV_VERSION = _STACK['mmcv'].pin
MIN_TORCH = _STACK['torch'].floor
# torch's ATen.h demands C++20 from 2.14 on (`__cplusplus < 202002L`
# -> #error); 2.13.0's ATen.h still asks for C++17 only, 2.11 was built with
# c++17 on the GPU machine, and torch never lowers its requirement, so
# 2.12 needs C++17 too.
CXX20_FROM = (2, 14)


@dataclass
class TorchFacts:
    """What the plan needs to know about torch and the machine."""
    torch_version: str
    cuda_version: Optional[str]  # torch.version.cuda; None: CPU build
    python_tag: str  # e.g. 'cp312'
    gpu_archs: List[str] = field(default_factory=list)  # '9.0' per GPU
    gpu_names: List[str] = field(default_factory=list)
    torch_archs: List[str] = field(default_factory=list)  # 'sm_90', ...


@dataclass
class Nvcc:
    """A CUDA toolkit found on the machine."""
    cuda_home: str
    version: str  # 'X.Y' as `nvcc --version` reports it


@dataclass
class Plan:
    """How to build mmcv; ``summary`` says which build and why."""
    cuda: bool
    summary: str
    cxx_std: str
    cache_key: str
    arch_list: str = ''
    cuda_home: str = ''  # '' with pip_nvcc: assembled after installing
    pip_nvcc: List[str] = field(default_factory=list)

    def build_env(self) -> Dict[str, str]:
        """The environment variables of mmcv's ``setup.py`` build."""
        env = {'MMCV_WITH_OPS': '1', 'FORCE_CUDA': str(int(self.cuda))}
        if not self.cuda:
            # mmcv's setup.py compiles CUDA ops whenever a GPU is visible.
            env['CUDA_VISIBLE_DEVICES'] = ''
        else:
            env['TORCH_CUDA_ARCH_LIST'] = self.arch_list
            if self.cuda_home:
                env['CUDA_HOME'] = self.cuda_home
        return env


class PlanError(ValueError):
    """A request that cannot be met, with the fix in its message."""


def cxx_standard(torch_version: str) -> str:
    """The C++ standard mmcv must be compiled with against this torch."""
    if version_tuple(torch_version)[:2] >= CXX20_FROM:
        return 'c++20'
    return 'c++17'


def check_torch_supported(torch_version: str) -> None:
    """Refuse a torch this project cannot run on, before building."""
    if version_tuple(torch_version) < version_tuple(MIN_TORCH):
        raise PlanError(
            f'`torch` should be >= {MIN_TORCH}, but got {torch_version}; '
            'load a newer torch (or drop --system-torch to install the '
            'pinned one).')


def nvcc_version(nvcc: str) -> Optional[str]:
    """'X.Y' from ``nvcc --version``, or None when it does not run."""
    try:
        out = subprocess.run([nvcc, '--version'],
                             capture_output=True,
                             text=True,
                             timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'release (\d+\.\d+)', out)
    return match.group(1) if match else None


def _is_toolkit(home: str) -> bool:
    return (os.access(osp.join(home, 'bin', 'nvcc'), os.X_OK)
            and osp.isfile(osp.join(home, 'include', 'cuda_runtime.h')))


def find_system_nvcc(env: Mapping[str, str],
                     default_home: str = '/usr/local/cuda') -> Optional[Nvcc]:
    """The machine's CUDA toolkit: CUDA_HOME/CUDA_PATH, else the one of
    ``nvcc`` on PATH, else /usr/local/cuda; None when there is none.

    A toolkit counts only with both ``bin/nvcc`` and the runtime headers:
    ``nvcc`` on PATH is often a wrapper script (then its own folder is no
    CUDA_HOME) and a driver-only install has no headers.
    """
    candidates = [env[k] for k in ('CUDA_HOME', 'CUDA_PATH') if env.get(k)]
    on_path = shutil.which('nvcc', path=env.get('PATH', ''))
    if on_path:
        candidates.append(osp.dirname(osp.dirname(osp.realpath(on_path))))
    candidates.append(default_home)
    for home in candidates:
        if _is_toolkit(home):
            version = nvcc_version(osp.join(home, 'bin', 'nvcc'))
            if version:
                return Nvcc(osp.abspath(home), version)
    return None


def pypi_nvcc_requirements(cuda_version: str) -> List[str]:
    """The PyPI packages that give a CUDA compiler and the headers mmcv's
    CUDA ops include, matching torch's CUDA version X.Y.

    CUDA 13 packages have no suffix and install into ``nvidia/cu13``;
    CUDA 12 ones carry ``-cu12`` and install one folder per package.
    """
    major, minor = cuda_version.split('.')[:2]
    spec = f'=={major}.{minor}.*'
    if int(major) >= 13:
        names = [
            'nvidia-cuda-nvcc', 'nvidia-cuda-crt', 'nvidia-nvvm',
            'nvidia-cuda-runtime', 'nvidia-cuda-cccl'
        ]
    elif int(major) == 12:
        names = [
            'nvidia-cuda-nvcc-cu12', 'nvidia-cuda-runtime-cu12',
            'nvidia-cuda-cccl-cu12'
        ]
    else:
        raise PlanError(
            f'`torch.version.cuda` should be 12.x or newer to take the CUDA '
            f'compiler from PyPI, but got {cuda_version}; set CUDA_HOME to a '
            f'CUDA {major} toolkit (e.g. `module load cuda/{major}`), or '
            'MMCV_CUDA=0 for CPU ops only.')
    return [name + spec for name in names]


def _arch_from_torch(arch: str) -> Optional[str]:
    # torch.cuda.get_arch_list(): 'sm_90', 'sm_90a', 'compute_90' (PTX).
    match = re.fullmatch(r'(sm|compute)_(\d+)(\d)([af]?)', arch)
    if not match:
        return None
    kind, major, minor, suffix = match.groups()
    name = f'{major}.{minor}{suffix}'
    return name + '+PTX' if kind == 'compute' else name


def choose_archs(facts: TorchFacts, env: Mapping[str, str]) -> Tuple[str, str]:
    """The arch list to compile for and where it came from."""
    override = env.get('TORCH_CUDA_ARCH_LIST', '').strip()
    if override:
        return override, 'TORCH_CUDA_ARCH_LIST'
    if facts.gpu_archs:
        archs = sorted(set(facts.gpu_archs), key=version_tuple)
        gpus = ', '.join(sorted(set(facts.gpu_names))) or 'GPU'
        return ';'.join(archs), f'the visible GPUs ({gpus})'
    archs = [a for a in map(_arch_from_torch, facts.torch_archs) if a]
    if not archs:
        raise PlanError(
            '`TORCH_CUDA_ARCH_LIST` should name the GPU architectures to '
            'build for when no GPU is visible, but got nothing; set e.g. '
            'TORCH_CUDA_ARCH_LIST="8.0;9.0".')
    # sm_90 and sm_90a both map to '9.0'-like names; keep each once.
    return ';'.join(dict.fromkeys(archs)), 'the archs torch was built for'


def cache_key(facts: TorchFacts, cuda_ops: bool, arch_list: str) -> str:
    """A folder name for the built wheel: a wheel built against another
    torch (or its CUDA), for other archs or without CUDA ops, must never be
    picked up."""
    torch_part = f'torch-{facts.torch_version}-' + (
        f'cu{facts.cuda_version}' if facts.cuda_version else 'cpu')
    if cuda_ops:
        archs = '_'.join(
            a.replace('.', '').replace('+PTX', 'ptx')
            for a in re.split(r'[;\s,]+', arch_list) if a)
        ops = f'ops-cu{facts.cuda_version}-sm{archs}'
    else:
        ops = 'ops-cpu'
    return re.sub(r'[^A-Za-z0-9._+-]', '_',
                  f'{torch_part}-{ops}-{facts.python_tag}')


def _cpu_plan(facts: TorchFacts, why: str) -> Plan:
    return Plan(
        cuda=False,
        summary=f'mmcv {MMCV_VERSION} with CPU ops only: {why}',
        cxx_std=cxx_standard(facts.torch_version),
        cache_key=cache_key(facts, False, ''))


def _wants_cuda(facts: TorchFacts, mode: str) -> Tuple[bool, str]:
    """Whether to build CUDA ops and, when not, why not."""
    if mode not in ('', '0', '1'):
        raise PlanError(f'`MMCV_CUDA` should be 0, 1 or unset, but got '
                        f'{mode!r}; unset it to decide from the machine.')
    if mode == '0':
        return False, 'MMCV_CUDA=0'
    if not facts.cuda_version:
        if mode == '1':
            raise PlanError(
                '`MMCV_CUDA=1` needs a CUDA build of torch, but got torch '
                f'{facts.torch_version}, a CPU build; install a CUDA torch '
                '(or use the cluster\'s with --system-torch), or unset '
                'MMCV_CUDA.')
        return False, f'torch {facts.torch_version} is a CPU build'
    if not facts.gpu_archs and mode != '1':
        return False, (
            f'torch {facts.torch_version} is a CUDA {facts.cuda_version} '
            'build but no GPU is visible (set MMCV_CUDA=1 to build CUDA '
            'ops here anyway, e.g. on a login node)')
    return True, ''


def make_plan(facts: TorchFacts, env: Mapping[str, str],
              system_nvcc: Optional[Nvcc]) -> Plan:
    """Decide the mmcv build from torch, the GPUs, the toolkit and env."""
    check_torch_supported(facts.torch_version)
    cuda, why_not = _wants_cuda(facts, env.get('MMCV_CUDA', '').strip())
    if not cuda:
        return _cpu_plan(facts, why_not)
    arch_list, arch_src = choose_archs(facts, env)
    torch_major = facts.cuda_version.split('.')[0]
    pip_nvcc: List[str] = []
    if system_nvcc and system_nvcc.version.split('.')[0] == torch_major:
        cuda_home = system_nvcc.cuda_home
        compiler = f'nvcc {system_nvcc.version} of {cuda_home}'
    else:
        # torch refuses to build extensions with another CUDA major.
        pip_nvcc = pypi_nvcc_requirements(facts.cuda_version)
        cuda_home = ''
        compiler = f'nvcc {facts.cuda_version} from PyPI (' + (
            f'the system nvcc {system_nvcc.version} of '
            f'{system_nvcc.cuda_home} does not match torch\'s CUDA)'
            if system_nvcc else 'no CUDA toolkit on this machine)')
    summary = (f'mmcv {MMCV_VERSION} with CUDA ops for torch '
               f'{facts.torch_version} (CUDA {facts.cuda_version}): '
               f'archs {arch_list} from {arch_src}, {compiler}')
    return Plan(
        cuda=True,
        summary=summary,
        cxx_std=cxx_standard(facts.torch_version),
        cache_key=cache_key(facts, True, arch_list),
        arch_list=arch_list,
        cuda_home=cuda_home,
        pip_nvcc=pip_nvcc)


def _link_tree(roots: Sequence[str], dest: str, sub: str) -> None:
    """Symlink every entry of ``root/sub`` of each root into ``dest/sub``
    (first root wins on a name clash)."""
    os.makedirs(osp.join(dest, sub), exist_ok=True)
    for root in roots:
        src = osp.join(root, sub)
        for name in sorted(os.listdir(src)) if osp.isdir(src) else []:
            link = osp.join(dest, sub, name)
            if not osp.lexists(link):
                os.symlink(osp.join(src, name), link)


def assemble_cuda_home(nvidia_dirs: Sequence[str], dest: str) -> str:
    """Make ``dest`` a CUDA_HOME of the PyPI compiler packages.

    torch's extension builder wants ``bin/nvcc``, ``include`` and a
    ``lib64`` (or ``lib``) with an unversioned ``libcudart.so``; the wheels
    spread these over ``nvidia/cu13`` (CUDA 13) or one folder per package
    (CUDA 12), possibly in several site-packages (the venv's compiler, the
    system's torch libraries with headers such as ``cusparse.h``), and ship
    only ``libcudart.so.N``. Symlinks, no copies.

    Args:
        nvidia_dirs: The ``nvidia`` namespace folders in import order.
        dest: The folder to (re)create.
    """
    dest = osp.abspath(dest)
    roots = []
    for nvidia in map(osp.abspath, nvidia_dirs):
        names = ['cu13'] if osp.isdir(osp.join(nvidia, 'cu13')) else sorted(
            os.listdir(nvidia)) if osp.isdir(nvidia) else []
        roots += [osp.join(nvidia, name) for name in names]
    if not any(osp.isfile(osp.join(r, 'bin', 'nvcc')) for r in roots):
        raise PlanError(
            f'`nvidia` packages should include nvidia-cuda-nvcc, but none '
            f'of {list(nvidia_dirs)} has a bin/nvcc; install the packages '
            'the plan lists (`python .dev_scripts/mmcv_build.py plan`).')
    if osp.isdir(dest):
        shutil.rmtree(dest)
    for sub in ('bin', 'nvvm', 'include', 'lib'):
        _link_tree(roots, dest, sub)
    lib = osp.join(dest, 'lib')
    if not osp.lexists(osp.join(lib, 'libcudart.so')):
        versioned = sorted(
            n for n in os.listdir(lib)
            if re.fullmatch(r'libcudart\.so\.\d+', n))
        if versioned:
            os.symlink(versioned[-1], osp.join(lib, 'libcudart.so'))
    os.symlink('lib', osp.join(dest, 'lib64'))
    return dest


def probe_torch() -> TorchFacts:
    """Read the facts from the torch of this interpreter."""
    import torch
    gpus = []
    if torch.version.cuda and torch.cuda.is_available():
        gpus = [(torch.cuda.get_device_name(i),
                 '{}.{}'.format(*torch.cuda.get_device_capability(i)))
                for i in range(torch.cuda.device_count())]
    return TorchFacts(
        torch_version=torch.__version__,
        cuda_version=torch.version.cuda,
        python_tag='cp{}{}'.format(*sys.version_info[:2]),
        gpu_archs=[arch for _, arch in gpus],
        gpu_names=[name for name, _ in gpus],
        torch_archs=list(torch.cuda.get_arch_list())
        if torch.version.cuda else [])


def shell_assignments(plan: Plan) -> str:
    """``PLAN_*=value`` lines that setup_env.sh evaluates."""
    exports = ' '.join(f'export {k}={shlex.quote(v)};'
                       for k, v in plan.build_env().items())
    values = {
        'PLAN_BUILD_ENV': exports,
        'PLAN_CUDA': str(int(plan.cuda)),
        'PLAN_SUMMARY': plan.summary,
        'PLAN_CXX_STD': plan.cxx_std,
        'PLAN_CACHE_KEY': plan.cache_key,
        'PLAN_ARCH_LIST': plan.arch_list,
        'PLAN_CUDA_HOME': plan.cuda_home,
        'PLAN_PIP_NVCC': ' '.join(plan.pip_nvcc),
    }
    return ''.join(f'{k}={shlex.quote(v)}\n' for k, v in values.items())


# Installed already, or left to the machine (a headless OpenCV build).
_NOT_REQUIRED = {
    'opencv-python', 'mmcv', 'mmcv-full', 'mmengine', 'torch', 'torchvision'
}


def _canonical(name: str) -> str:
    return re.sub(r'[-_.]+', '-', name).lower()


def dependencies_without_opencv(requires: Sequence[str]) -> List[str]:
    """The unconditional requirements of installed OpenMMLab packages
    (their ``Requires-Dist`` lines), less OpenCV, torch and the OpenMMLab
    packages themselves: what ``pip install --no-deps`` left out."""
    out = []
    for line in requires:
        spec, _, marker = line.partition(';')
        if 'extra' in marker:
            continue
        name = re.match(r'\s*([A-Za-z0-9][A-Za-z0-9._-]*)', spec).group(1)
        if _canonical(name) not in _NOT_REQUIRED:
            # One shell word each; pip still reads the marker.
            spec = re.sub(r'[\s()]', '', spec)
            marker = re.sub(r'\s', '', marker)
            out.append(f'{spec};{marker}' if marker else spec)
    return sorted(set(out))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    plan_p = sub.add_parser('plan', help='print the build plan')
    plan_p.add_argument(
        '--shell',
        action='store_true',
        help='shell assignments instead of JSON')
    home_p = sub.add_parser('cuda-home', help='assemble a PyPI CUDA_HOME')
    home_p.add_argument('dest')
    reqs_p = sub.add_parser(
        'requirements', help='dependencies of installed packages, less OpenCV')
    reqs_p.add_argument('packages', nargs='+')
    args = parser.parse_args(argv)
    try:
        if args.command == 'requirements':
            from importlib.metadata import requires
            names = [re.split(r'[=<>!~ ]', p)[0] for p in args.packages]
            lines = [r for n in names for r in requires(n) or []]
            print(' '.join(dependencies_without_opencv(lines)))
            return 0
        if args.command == 'cuda-home':
            import nvidia  # the namespace of the nvidia-* wheels
            print(assemble_cuda_home(list(nvidia.__path__), args.dest))
            return 0
        plan = make_plan(probe_torch(), os.environ,
                         find_system_nvcc(os.environ))
    except PlanError as err:
        print(f'mmcv_build: error: {err}', file=sys.stderr)
        return 2
    if args.shell:
        print(shell_assignments(plan), end='')
    else:
        report = dict(asdict(plan), build_env=plan.build_env())
        print(json.dumps(report, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
