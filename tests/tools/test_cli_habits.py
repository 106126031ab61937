"""tools/train.py with --teacher as an OpenMMLab user drives it (run here,
in this process, by its ``main``): its own work dir, --cfg-options written
for the student, auto-resume that never takes another model's checkpoint;
the launch scripts' interpreter."""
import os
import os.path as osp
import shutil
import subprocess

import pytest
import torch
from distkd_testing import (REPO, load_tool, run_tool, save_teacher,
                            tiny_classifier, tiny_distiller, write_config)
from mmengine.config import Config
from mmengine.runner import Runner


@pytest.fixture
def plain_and_teacher(imagenet_root, tmp_path):
    """A plain student config (work dir ``work``) and a teacher on disk."""
    plain = write_config(tmp_path / 'plain.py', imagenet_root,
                         str(tmp_path / 'work'), tiny_classifier(4), 1)
    teacher_cfg = tmp_path / 'teacher.py'
    teacher_cfg.write_text(f'model = {tiny_classifier(8)!r}\n')
    ckpt = save_teacher(tmp_path / 'teacher.pth')
    return plain, str(teacher_cfg), ckpt


@pytest.mark.slow
def test_teacher_on_the_command_line_trains_in_its_own_work_dir(
        plain_and_teacher, tmp_path):
    """``--teacher`` on a plain mmpretrain config: a Distiller trains, in
    its own work dir, with ``--cfg-options`` written for the student."""
    plain, teacher, ckpt = plain_and_teacher
    run_tool('train', plain, '--teacher', teacher, '--teacher-ckpt', ckpt,
             '--resume', '--cfg-options', 'model.head.loss.loss_weight=0.5',
             'model.teacher_autocast=bf16', 'log_level=INFO',
             'default_hooks.teacher_gate.enable=False')  # random teacher
    # Its own work dir, next to the student config's (`work`).
    work = tmp_path / 'dist_teacher_plain'
    assert (work / 'epoch_1.pth').is_file()
    assert not (tmp_path / 'work').exists()  # the baseline's stays clean
    saved = Config.fromfile(str(work / 'plain.py'))
    # `model.X` reached the student; a Distiller argument the Distiller.
    assert saved.model.student.head.loss.loss_weight == 0.5
    assert saved.model.teacher_autocast == 'bf16'
    log = open(next(work.glob('*/*.log'))).read()
    assert 'loss_dist' in log  # the DIST term trained
    assert log.count('`--cfg-options model.head.loss.loss_weight` applies '
                     'to the student') == 1
    assert 'is `model.student.head.loss.loss_weight`' in log
    assert f'has its own work dir {work}' in log
    # The checkpoint holds the student (tests/distillers: never the teacher).
    keys = list(
        torch.load(work / 'epoch_1.pth', weights_only=False)['state_dict'])
    assert any(k.startswith('student.head.fc') for k in keys)


@pytest.mark.slow
def test_auto_resume_refuses_another_models_checkpoint(plain_and_teacher,
                                                       tmp_path, capsys):
    plain, teacher, ckpt = plain_and_teacher
    run_tool('train', plain)
    capsys.readouterr()
    with pytest.raises(RuntimeError, match='a different model wrote it') as e:
        run_tool('train', plain, '--teacher', teacher, '--teacher-ckpt', ckpt,
                 '--work-dir', str(tmp_path / 'work'), '--resume')
    error = str(e.value)
    assert "run 'plain_" in error and 'backbone.*, head.*' in error
    assert 'this run trains a Distiller with weights student.*' in error
    output = capsys.readouterr()
    assert 'is skipped' not in output.out + output.err  # no optimizer warnings


def test_options_for_a_distiller_config_name_the_student_key(
        imagenet_root, tmp_path):
    cfg = write_config(tmp_path / 'distill.py', imagenet_root,
                       str(tmp_path / 'w'), tiny_distiller(), 1)
    with pytest.raises(ValueError, match='model.student.backbone'):
        run_tool('train', cfg, '--cfg-options', 'model.backbone.init_cfg=None')


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


@pytest.mark.slow
def test_two_runners_built_in_one_second_keep_their_own_logs(
        plain_and_teacher, tmp_path, monkeypatch):
    # MMEngine names a dict config's run by its start second; frozen here,
    # so both Runners are built "in the same second" on any machine.
    monkeypatch.setattr('time.time', lambda: 1_800_000_000.0)
    # The tools set LOCAL_RANK; undone after the test.
    monkeypatch.setenv('LOCAL_RANK', os.environ.get('LOCAL_RANK', '0'))
    train = load_tool('train')
    runners = []
    for name in ('a', 'b'):
        cfg, _ = train.build_config(
            train.parse_args(
                [plain_and_teacher[0], '--work-dir',
                 str(tmp_path / name)]))
        runners.append(Runner.from_cfg(cfg))
    first, second = runners
    assert first.timestamp == second.timestamp
    assert first.logger is not second.logger
    assert first.message_hub is not second.message_hub
    for runner in runners:
        runner.logger.warning(f'written by {runner.work_dir}')
    for runner in runners:
        log = osp.join(runner.log_dir, f'{runner.timestamp}.log')
        assert f'written by {runner.work_dir}' in open(log).read()
