"""A checkpoint loads into what it says through a real Runner: a plain
student's ``load_from`` into a Distiller's student, a checkpoint of another
model refused, a resume into a changed student refused before anything is
written."""
import os

import pytest
import torch
from distkd_testing import runner_cfg, tiny_classifier, tiny_distiller
from mmengine.registry import MODELS
from mmengine.runner import Runner


def _runner(root, work_dir, model, **extra):
    cfg = runner_cfg(root, str(work_dir), model, 1)
    cfg.update(extra)
    return Runner.from_cfg(cfg)


def test_load_from_plain_student_starts_the_student_from_it(
        imagenet_root, tmp_path):
    torch.manual_seed(1)
    plain = MODELS.build(tiny_classifier(4)).state_dict()
    path = str(tmp_path / 'baseline.pth')
    torch.save({'meta': {}, 'state_dict': plain}, path)
    runner = _runner(
        imagenet_root,
        tmp_path / 'work',
        tiny_distiller(),
        load_from=path,
        log_level='INFO')
    runner.load_or_resume()  # what train() does before the first step
    student = runner.model.student.state_dict()
    for key in ('backbone.conv1.weight', 'head.fc.weight'):
        assert torch.equal(student[key], plain[key])
    log = open(os.path.join(runner.log_dir, f'{runner.timestamp}.log')).read()
    assert log.count('loaded into the Distiller\'s student: 52 of 52') == 1


def test_load_from_another_model_fails_saying_what_to_do(
        imagenet_root, tmp_path):
    # Twice as wide: every key exists, almost no shape fits.
    path = str(tmp_path / 'wide.pth')
    torch.save({'state_dict': MODELS.build(tiny_classifier(8)).state_dict()},
               path)
    runner = _runner(
        imagenet_root, tmp_path / 'work', tiny_distiller(), load_from=path)
    with pytest.raises(
            RuntimeError,
            match='(?s)`load_from` should be a checkpoint of the student.*'
            'fits too little.*belong together'):
        runner.load_or_resume()


def test_load_from_a_distiller_of_another_student_fails_saying_what_to_do(
        imagenet_root, tmp_path):
    # A Distiller checkpoint whose student is twice as wide: the same
    # half rule as for a plain one (MMEngine alone loads it non-strictly
    # and trains from random initialisation).
    other = MODELS.build(tiny_distiller(student_width=8))
    path = str(tmp_path / 'other_distiller.pth')
    torch.save({'state_dict': other.state_dict()}, path)
    runner = _runner(
        imagenet_root, tmp_path / 'work', tiny_distiller(), load_from=path)
    with pytest.raises(
            RuntimeError,
            match='(?s)fits too little.*fit the Distiller checkpoint'):
        runner.load_or_resume()
    # Its own Distiller checkpoint still loads, all of the student.
    own = MODELS.build(tiny_distiller())
    torch.save({'state_dict': own.state_dict()}, path)
    runner = _runner(
        imagenet_root, tmp_path / 'work2', tiny_distiller(), load_from=path)
    runner.load_or_resume()
    torch.testing.assert_close(runner.model.student.state_dict(),
                               own.student.state_dict())


def _files(root):
    return {
        os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
        for d, _, names in os.walk(root)
        for f in names
    }


@pytest.mark.slow
def test_resume_into_a_widened_student_is_refused_writing_nothing(
        imagenet_root, tmp_path):
    work = tmp_path / 'work'
    _runner(imagenet_root, work, tiny_distiller()).train()
    last = (work / 'last_checkpoint').read_text()
    runner = _runner(
        imagenet_root,
        work,
        tiny_distiller(student_width=6),
        resume=True,
        train_cfg=dict(by_epoch=True, max_epochs=2))
    before = _files(work)
    with pytest.raises(
            RuntimeError,
            match=r'(?s)`resume` should continue the model.*'
            r'student\.backbone\.conv1\.weight: checkpoint \(4, 3, 3, 3\) '
            r'vs model \(6, 3, 3, 3\)'):
        runner.train()
    after = _files(work)
    # The new run's log may grow; no checkpoint is added or changed.
    assert {
        k: v
        for k, v in after.items()
        if not k.endswith('.log') and not k.endswith('.json')
    } == {
        k: v
        for k, v in before.items()
        if not k.endswith('.log') and not k.endswith('.json')
    }
    assert (work / 'last_checkpoint').read_text() == last
    assert not (work / 'epoch_2.pth').exists()


def test_auto_resume_check_compares_shapes(imagenet_root, tmp_path):
    from distkd_mm.apis.cli import check_auto_resume
    work = tmp_path / 'work'
    _runner(imagenet_root, work, tiny_classifier(4)).train()
    # Every key of the 4-wide student exists in the 6-wide one.
    runner = _runner(imagenet_root, work, tiny_classifier(6), resume=True)
    with pytest.raises(
            RuntimeError,
            match=r'(?s)a different model wrote it.*'
            r'backbone\.conv1\.weight: checkpoint \(4, 3, 3, 3\) vs model '
            r'\(6, 3, 3, 3\)'):
        check_auto_resume(runner, runner.cfg)
