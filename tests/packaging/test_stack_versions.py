"""requirements/stack.txt holds the stack's versions once: no script restates
them, setup.py declares its ranges, and pip reads it as it is."""
import importlib.metadata
import os.path as osp
import re
import subprocess
import sys

import pytest
from distkd_testing import REPO, load_tool

STACK_TXT = osp.join(REPO, 'requirements', 'stack.txt')
STACK_PY = osp.join(REPO, 'requirements', 'stack.py')
# Where versions used to be restated: packaging, the tools, the
# environment scripts and the package (docs and tests are not scanned).
SCANNED = ('setup.py', 'requirements.txt', 'MANIFEST.in', 'Makefile', '.ci',
           'tools', '.dev_scripts', 'distkd_mm')


@pytest.fixture(scope='module')
def stack():
    return load_tool(STACK_PY)


@pytest.fixture(scope='module')
def setup_py():
    # Loaded as a module, setup.py defines its functions and runs nothing.
    return load_tool(osp.join(REPO, 'setup.py'))


def scanned_files() -> list:
    out = subprocess.run([
        'git', 'ls-files', '--cached', '--others', '--exclude-standard',
        *SCANNED
    ],
                         cwd=REPO,
                         capture_output=True,
                         text=True,
                         check=True).stdout
    return [
        path for path in out.splitlines() if osp.isfile(osp.join(REPO, path))
    ]


def test_no_script_restates_a_version_of_the_stack(stack):
    entries = stack.read_stack().values()
    pins = [e.pin for e in entries if e.pin]
    # A pinned version anywhere, or a package of the stack with a specifier
    # written the way pip reads it (`mmcv==X`, `torch>=X`).
    pattern = re.compile(
        r'(?<![\w.])(?:{})(?![\w.])|(?<![\w-])(?:{})(?:==|>=|<=|~=|!=|<|>)\d'.
        format('|'.join(map(re.escape, pins)),
               '|'.join(re.escape(e.name) for e in entries)), re.I)
    files = scanned_files()
    assert 'setup.py' in files and '.dev_scripts/setup_env.sh' in files
    restated = []
    for path in files:
        with open(
                osp.join(REPO, path), encoding='utf-8', errors='replace') as f:
            for number, line in enumerate(f, 1):
                if pattern.search(line):
                    restated.append(f'{path}:{number}: {line.strip()}')
    assert restated == []


def test_setup_py_declares_the_stacks_ranges(stack, setup_py):
    entries = stack.read_stack()
    assert setup_py.requirements(setup_py.load_stack(), 'torch', 'mmcv',
                                 'mmdet') == [
                                     'torch>=2.5', 'mmcv>=2.0.0,<2.2.0',
                                     'mmdet>=' + entries['mmdet'].pin
                                 ]
    # What the installed distkd_mm (this checkout, editable) declares.
    dist = importlib.metadata.distribution('distkd_mm')
    declared = {}
    for line in dist.requires:
        spec = line.split(';')[0].replace(' ', '')
        name = re.match(r'[A-Za-z0-9._-]+', spec).group(0)
        declared[name] = spec[len(name):].strip('()')
    for name in ('torch', 'mmengine', 'mmcv', 'numpy', 'mmpretrain', 'mmdet',
                 'mmsegmentation'):
        assert sorted(declared[name].split(',')) == sorted(
            entries[name].supported.split(',')), name


def test_reading_a_stack_file(stack, tmp_path):
    path = tmp_path / 'stack.txt'
    path.write_text('# comment\ntorch>=2.5,==2.14.1  # why\nmmdet==3.3.0\n'
                    'numpy>=1.24\n\nsetuptools>=70,<81\n')
    entries = stack.read_stack(str(path))
    assert list(entries) == ['torch', 'mmdet', 'numpy', 'setuptools']
    assert entries['torch'] == stack.Entry('torch', '>=2.5', '2.14.1')
    assert entries['torch'].floor == '2.5'
    # A pin alone supports that version and newer.
    assert entries['mmdet'].requirement == 'mmdet>=3.3.0'
    assert entries['numpy'].pin is None
    assert entries['setuptools'].supported == '>=70,<81'
    assert stack.without(['Torch', 'numpy'],
                         str(path)) == ['mmdet==3.3.0', 'setuptools>=70,<81']
    assert stack.version_tuple('2.15.0.dev20261101') == (2, 15, 0)
    assert stack.version_tuple('2.4.1+cu121') < stack.version_tuple('2.5')


def test_pin_command_for_the_shell_scripts(stack):
    entries = stack.read_stack()

    def run(*args):
        return subprocess.run([sys.executable, STACK_PY, *args],
                              capture_output=True,
                              text=True)

    proc = run('pin', 'torch', 'mmcv')
    assert proc.returncode == 0
    assert proc.stdout.split() == [entries['torch'].pin, entries['mmcv'].pin]
    proc = run('pin', 'numpy')
    assert proc.returncode == 1
    assert proc.stderr.startswith('stack.py: error: `numpy` should be '
                                  'pinned in ')
    assert 'add a `numpy==X` line' in proc.stderr
    proc = run('without', 'torch', 'torchvision')
    assert proc.returncode == 0 and 'torch' not in {
        re.match(r'[\w.-]+', line).group(0)
        for line in proc.stdout.splitlines()
    } and f'mmcv>=2.0.0,<2.2.0,=={entries["mmcv"].pin}' in proc.stdout


@pytest.mark.slow
def test_pip_reads_the_stack_as_constraints():
    # What setup_env.sh and fetch_wheels.sh pass to pip: the resolver sees
    # the pins (installed here) and reports nothing to change.
    proc = subprocess.run([
        sys.executable, '-m', 'pip', 'install', '--dry-run', '--no-deps',
        '--no-index', '-c', STACK_TXT, 'mmengine', 'mmdet'
    ],
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert 'Would install' not in proc.stdout
