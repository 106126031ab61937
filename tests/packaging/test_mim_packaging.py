"""Packaged the OpenMMLab way: configs, tools and the model index ship
under ``distkd_mm/.mim`` (links in the editable install, copies in a
wheel), so ``mim search`` and ``mim train`` work on the package."""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

import pytest
import yaml
from distkd_testing import REPO, load_tool

BIN = osp.dirname(sys.executable)
MIM = osp.join(BIN, 'mim')
# What never goes into a wheel: environments, outputs, caches.
SKIP = shutil.ignore_patterns('.venv', '.git', '.gpu', 'work_dirs', 'data',
                              'build', 'dist', '*.egg-info', '__pycache__',
                              '.pytest_cache', '.mim')


def run(cmd, cwd=None, **env) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        PATH=f'{BIN}:{os.environ["PATH"]}',  # mim calls `python`
        OMP_NUM_THREADS='1',
        **env)
    result = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0, output
    return result


@pytest.fixture(scope='module')
def wheel(tmp_path_factory) -> str:
    """A wheel built from a copy of the repository (a build writes
    ``distkd_mm/.mim`` in the source tree; the checkout keeps its links)."""
    tmp = tmp_path_factory.mktemp('wheel')
    src = tmp / 'src'
    shutil.copytree(REPO, src, ignore=SKIP)
    run([
        sys.executable, '-m', 'pip', 'wheel', '--no-deps',
        '--no-build-isolation', '-q', '-w',
        str(tmp / 'dist'),
        str(src)
    ])
    return glob.glob(str(tmp / 'dist' / 'distkd_mm-*.whl'))[0]


def repo_files(folder: str, pattern: str) -> list:
    return sorted(
        osp.relpath(path, REPO)
        for path in glob.glob(osp.join(REPO, folder, pattern), recursive=True)
        if '__pycache__' not in path)


def test_wheel_holds_configs_tools_and_model_index(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = (
        repo_files('configs', '**/*.py') + repo_files('configs', '**/*.yml') +
        repo_files('tools', '**/*.py') + repo_files('tools', '**/*.sh') +
        ['model-index.yml'])
    assert len(expected) > 60
    # tools/ ships whole: with the scripts, the package tools/benchmark.py
    # imports.
    assert 'tools/benchmarking/__init__.py' in expected
    missing = [f for f in expected if f'distkd_mm/.mim/{f}' not in names]
    assert not missing


def test_editable_install_links_the_repository():
    import distkd_mm
    mim = osp.join(osp.dirname(distkd_mm.__file__), '.mim')
    for name in ('configs', 'tools', 'model-index.yml'):
        assert osp.islink(osp.join(mim, name)), name
        assert osp.samefile(osp.join(mim, name), osp.join(REPO, name))


def test_model_index_lists_every_config_once_with_the_seeds_numbers():
    with open(osp.join(REPO, 'model-index.yml')) as f:
        imports = yaml.safe_load(f)['Import']
    assert sorted(imports) == [
        'configs/mmdet/metafile.yml', 'configs/mmpretrain/metafile.yml',
        'configs/mmseg/metafile.yml'
    ]
    configs = []
    for metafile in imports:
        with open(osp.join(REPO, metafile)) as f:
            meta = yaml.safe_load(f)
        for model in meta['Models']:
            assert osp.isfile(osp.join(REPO, model['Config'])), model['Config']
            assert model['Metadata']['Teacher Config']
            assert 'Results reported by the DIST paper' in model['Results'][0][
                'Metrics']['Note']
            configs.append(model['Config'])
    assert len(configs) == len(set(configs))
    shipped = [
        f for f in repo_files('configs', '*/*.py')
        if not f.startswith(('configs/demo/', 'configs/_base_/'))
    ]
    assert sorted(configs) == shipped


# A config's collection by its folder and its algorithm (the config name's
# first field).
TASKS = {'mmpretrain': 'cls', 'mmdet': 'det', 'mmseg': 'seg'}
ALGORITHMS = {'dist': 'DIST', 'kd': 'KD', 'dist-mimic': 'DIST+mimic'}


def test_mim_search_gives_each_config_its_task_readme_and_collection(tmp_path):
    """The records `mim search` builds (its --json dump of them) for the
    editable install: each config points at the README of its own task
    folder through a collection of its task and algorithm, and carries
    the seed's number of configs/seed_results.yml."""
    # mim 0.3.x finds a package through its distribution's location; for a
    # PEP 660 editable install that is site-packages, which holds only its
    # metadata: the repository goes on the path (as the README says).
    path = os.pathsep.join([REPO, os.environ.get('PYTHONPATH', '')])
    dump = tmp_path / 'search.json'
    run([MIM, 'search', 'distkd_mm', '--json', str(dump)], PYTHONPATH=path)
    with open(dump) as f:
        columns = json.load(f)  # pandas' layout: field -> model -> value
    records = {
        model: {
            field: values[model]
            for field, values in columns.items()
            if values.get(model) is not None
        }
        for model in columns['config']
    }
    seed_tables = load_tool('misc/seed_tables')
    table = seed_tables.load_table()
    results = seed_tables.config_results(table)
    assert sorted(r['config'] for r in records.values()) == sorted(results)
    for model, record in records.items():
        folder, name = record['config'].split('/')[1:]
        assert name == f'{model}.py'
        assert record['readme'] == f'configs/{folder}/README.md', model
        algorithm = ALGORITHMS[name.split('_')[0]]
        # mim lower-cases the collection name into the `model` field.
        assert record['model'] == f'{algorithm}-{TASKS[folder]}'.lower()
        entry = results[record['config']]
        dataset = entry['dataset'].lower()
        metric = '_'.join(
            table['tasks'][entry['task']]['metric'].lower().split())
        assert record[f'{dataset}/{metric}'] == entry['value'], model
        assert record[f'{dataset}/note'].startswith(
            'Results reported by the DIST paper')
    # Five collections, each on the README of its task.
    readmes = {r['model']: r['readme'] for r in records.values()}
    assert readmes == {
        'dist-cls': 'configs/mmpretrain/README.md',
        'kd-cls': 'configs/mmpretrain/README.md',
        'dist-det': 'configs/mmdet/README.md',
        'dist+mimic-det': 'configs/mmdet/README.md',
        'dist-seg': 'configs/mmseg/README.md',
    }


@pytest.mark.slow
def test_wheel_install_trains_with_mim(wheel, demo_teacher_ckpt, tmp_path):
    """`pip install` of the wheel (non-editable, in a folder first on the
    path), then `mim train distkd_mm CONFIG` finds the config by name in
    the installed package and runs the package's own tools/train.py."""
    site = tmp_path / 'site'
    run([
        sys.executable, '-m', 'pip', 'install', '--no-deps', '-q', '--target',
        str(site), wheel
    ])
    work = tmp_path / 'work'
    # The installed copy first on the path, ahead of the editable install.
    path = os.pathsep.join([str(site), os.environ.get('PYTHONPATH', '')])
    result = run(
        [
            MIM,
            'train',
            'distkd_mm',
            'digits_dist.py',
            '--gpus',
            '0',
            '--work-dir',
            str(work),
            '--cfg-options',
            f'model.teacher_ckpt={demo_teacher_ckpt}',
            'train_cfg.max_epochs=1',
            'train_dataloader.dataset.indices=64',
            'val_dataloader.dataset.indices=64',
            'default_hooks.teacher_gate.enable=False'  # a random teacher
        ],
        PYTHONPATH=path)
    installed = str(site / 'distkd_mm' / '.mim')
    assert f'{installed}/configs/demo/digits_dist.py' in result.stdout
    assert f'{installed}/tools/train.py' in result.stdout
    assert (work / 'epoch_1.pth').is_file()
    # One interpreter (away from the repository, whose configs/ it cannot
    # reach) for the --teacher presets, which read the installed copy's
    # config fragments, and for `mim search`, its command line function.
    result = run([
        sys.executable, '-c', 'import distkd_mm; from distkd_mm.apis import '
        'PRESETS; print(distkd_mm.__file__, PRESETS["seg"]({}, {})); '
        'from mim.cli import cli; cli(["search", "distkd_mm"])'
    ],
                 cwd=str(tmp_path),
                 PYTHONPATH=path)
    assert result.stdout.startswith(str(site / 'distkd_mm'))
    presets = result.stdout.splitlines()[0]
    assert "'decode_head.conv_seg'" in presets
    assert 'dist_r34_r18_8xb32-100e_in1k' in result.stdout
