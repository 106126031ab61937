"""tools/train.py with --teacher as an OpenMMLab user drives it: its own
work dir, --cfg-options written for the student, auto-resume that never
takes another model's checkpoint; the launch scripts' interpreter."""
import os
import os.path as osp
import shutil
import subprocess

import pytest
from distkd_testing import (REPO, cli, save_teacher, tiny_classifier,
                            write_config)
from mmengine.config import Config


@pytest.fixture
def plain_and_teacher(imagenet_root, tmp_path):
    """A plain student config (work dir ``work``) and a teacher on disk."""
    plain = write_config(tmp_path / 'plain.py', imagenet_root,
                         str(tmp_path / 'work'), tiny_classifier(4), 1)
    teacher_cfg = tmp_path / 'teacher.py'
    teacher_cfg.write_text(f'model = {tiny_classifier(8)!r}\n')
    ckpt = save_teacher(tmp_path / 'teacher.pth')
    return plain, str(teacher_cfg), ckpt


def test_teacher_run_has_its_own_work_dir_and_student_options(
        plain_and_teacher, tmp_path):
    plain, teacher, ckpt = plain_and_teacher
    result = cli([
        'tools/train.py', plain, '--teacher', teacher, '--teacher-ckpt', ckpt,
        '--resume', '--cfg-options', 'model.head.loss.loss_weight=0.5',
        'model.teacher_autocast=bf16', 'log_level=INFO'
    ], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    work = tmp_path / 'dist_teacher_plain'
    assert (work / 'epoch_1.pth').is_file()
    assert not (tmp_path / 'work').exists()  # the baseline's stays clean
    saved = Config.fromfile(str(work / 'plain.py'))
    # `model.X` reached the student; a Distiller argument the Distiller.
    assert saved.model.student.head.loss.loss_weight == 0.5
    assert saved.model.teacher_autocast == 'bf16'
    log = open(next(work.glob('*/*.log'))).read()
    assert log.count('`--cfg-options model.head.loss.loss_weight` applies '
                     'to the student') == 1
    assert 'is `model.student.head.loss.loss_weight`' in log
    assert f'has its own work dir {work}' in log


def test_auto_resume_refuses_another_models_checkpoint(plain_and_teacher,
                                                       tmp_path):
    plain, teacher, ckpt = plain_and_teacher
    assert cli(['tools/train.py', plain], tmp_path).returncode == 0
    result = cli([
        'tools/train.py', plain, '--teacher', teacher, '--teacher-ckpt', ckpt,
        '--work-dir',
        str(tmp_path / 'work'), '--resume'
    ], tmp_path)
    assert result.returncode != 0
    error = result.stderr[-2000:]
    assert 'a different model wrote it' in error, error
    assert "run 'plain_" in error and 'backbone.*, head.*' in error
    assert 'this run trains a Distiller with weights student.*' in error
    assert 'is skipped' not in result.stderr  # no optimizer warnings


def test_options_for_a_distiller_config_name_the_student_key(
        imagenet_root, tmp_path):
    from distkd_testing import tiny_distiller
    cfg = write_config(tmp_path / 'distill.py', imagenet_root,
                       str(tmp_path / 'w'), tiny_distiller(), 1)
    result = cli([
        'tools/train.py', cfg, '--cfg-options', 'model.backbone.init_cfg=None'
    ], tmp_path)
    assert result.returncode != 0
    assert 'model.student.backbone' in result.stderr


RECORDER = '#!/bin/sh\necho "$0 $*" > "$RECORD"\n'


def _executable(path, text: str = RECORDER) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize('script,args', [
    ('dist_train.sh', ['cfg.py', '2']),
    ('dist_test.sh', ['cfg.py', 'ckpt.pth', '2']),
    ('slurm_train.sh', ['partition', 'job', 'cfg.py', 'work']),
])
def test_launch_scripts_use_the_project_interpreter(tmp_path, script, args):
    """A copy of the script in a repository whose ``.venv/bin/python``
    (and a stand-in ``srun``) records how it was called."""
    root = tmp_path / 'repo'
    (root / 'tools').mkdir(parents=True)
    shutil.copy(osp.join(REPO, 'tools', script), root / 'tools' / script)
    (root / '.venv' / 'bin').mkdir(parents=True)
    venv_python = _executable(root / '.venv' / 'bin' / 'python')
    (tmp_path / 'bin').mkdir()
    # No slurm here: `srun` records its command line like the interpreter.
    _executable(tmp_path / 'bin' / 'srun')
    record = tmp_path / 'record'
    env = dict(
        os.environ,
        RECORD=str(record),
        PATH=f'{tmp_path / "bin"}:{os.environ["PATH"]}')
    env.pop('PYTHON', None)
    command = ['bash', str(root / 'tools' / script), *args]
    subprocess.run(command, env=env, check=True, capture_output=True)
    assert f' {venv_python} ' in f' {record.read_text()}'
    # PYTHON overrides it.
    other = _executable(tmp_path / 'other-python')
    subprocess.run(
        command, env=dict(env, PYTHON=other), check=True, capture_output=True)
    assert f' {other} ' in f' {record.read_text()}'
    assert venv_python not in record.read_text()
