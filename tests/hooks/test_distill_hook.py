"""DistillHook (weight schedule, frozen-teacher guard) and the teacher gate
(TeacherGateHook) in a real Runner."""
import copy
import os.path as osp

import pytest
import torch
from distkd_testing import runner_cfg, tiny_classifier, tiny_distiller
from mmengine.runner import Runner

from distkd_mm.hooks import DistillHook


@pytest.fixture(scope='module')
def trained_teacher(imagenet_root, tmp_path_factory) -> str:
    """A tiny classifier trained on the generated classes (100% val)."""
    work = str(tmp_path_factory.mktemp('teacher'))
    cfg = runner_cfg(imagenet_root, work, tiny_classifier(8, 4), 5)
    cfg['optim_wrapper']['optimizer']['lr'] = 0.1
    cfg['train_cfg']['val_interval'] = 5
    cfg['default_hooks']['checkpoint']['interval'] = 5
    runner = Runner.from_cfg(cfg)
    runner.train()
    accuracy = runner.message_hub.log_scalars['val/accuracy/top1'].current()
    assert accuracy >= 90, 'the fixture teacher should have learned'
    return osp.join(work, 'epoch_5.pth')


GATE_ARGS = {'enable', 'min_teacher_score', 'max_eval_batches'}


def distill_run(root,
                work_dir,
                ckpt,
                epochs=1,
                student_pre=None,
                teacher_preprocess='own',
                **hook):
    model = tiny_distiller(
        teacher_ckpt=ckpt, teacher_preprocess=teacher_preprocess)
    if student_pre is not None:
        model['student']['data_preprocessor'] = student_pre
    model['student']['head']['num_classes'] = 4
    model['teacher']['head']['num_classes'] = 4
    cfg = runner_cfg(root, work_dir, model, epochs)
    gate = {k: v for k, v in hook.items() if k in GATE_ARGS}
    schedule = {k: v for k, v in hook.items() if k not in GATE_ARGS}
    cfg['default_hooks']['teacher_gate'] = dict(type='TeacherGateHook', **gate)
    cfg['custom_hooks'] = [dict(type='DistillHook', **schedule)]
    cfg['log_level'] = 'INFO'
    return Runner.from_cfg(copy.deepcopy(cfg))


@pytest.mark.slow
def test_gate_passes_a_trained_teacher_and_logs_its_score(
        imagenet_root, trained_teacher, tmp_path):
    runner = distill_run(imagenet_root, str(tmp_path), trained_teacher)
    runner.train()
    log = open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()
    assert "Teacher before training: {'accuracy/top1': 100.0}" in log
    assert runner.iter > 0
    # The gate states its cost against a training iteration.
    assert 'Teacher gate cost: ' in log and 'training iteration(s)' in log
    # Without a warm-up or stop, no scale is logged beside the losses.
    assert 'train/distill_scale' not in runner.message_hub.log_scalars
    assert 'train/loss_student' in runner.message_hub.log_scalars
    # Evaluating the teacher left nothing behind: the checkpoint holds the
    # student only, and predict runs the student again.
    saved = torch.load(
        osp.join(str(tmp_path), 'epoch_1.pth'), weights_only=False)
    assert not any(
        k.startswith(('teacher.', '_')) and k != '_extra_state'
        for k in saved['state_dict'])


def test_a_trained_teacher_keeps_its_accuracy_beside_another_preprocessing(
        imagenet_root, trained_teacher, tmp_path):
    # The teacher learned on BGR, mean 127.5 / std 64; this student feeds
    # RGB with ImageNet's mean/std: the teacher's inputs are derived, and
    # it scores inside the Distiller what it scores on its own (100 %).
    from distkd_mm.hooks import TeacherGateHook
    student_pre = dict(
        type='mmpretrain.ClsDataPreprocessor',
        to_rgb=True,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375])
    runner = distill_run(
        imagenet_root,
        str(tmp_path),
        trained_teacher,
        epochs=0,
        student_pre=student_pre)
    runner.train()
    log = open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()
    assert "Teacher before training: {'accuracy/top1': 100.0}" in log
    assert 'teacher inputs: derived from the student' in log
    # The student's batch as it is (the behaviour before the mapping):
    # the same teacher loses accuracy, so the 100 % above is the mapping's.
    unmapped = distill_run(
        imagenet_root,
        str(tmp_path / 'unmapped'),
        trained_teacher,
        epochs=0,
        student_pre=student_pre,
        teacher_preprocess='student')
    gate = next(h for h in unmapped.hooks if isinstance(h, TeacherGateHook))
    metrics, _ = gate.evaluate_teacher(unmapped)
    assert metrics['accuracy/top1'] < 90


@pytest.mark.slow
def test_gate_stops_a_random_teacher_before_any_training(
        imagenet_root, tmp_path):
    torch.manual_seed(0)
    random_ckpt = str(tmp_path / 'random.pth')
    from mmengine.registry import MODELS
    torch.save(
        {'state_dict': MODELS.build(tiny_classifier(8, 4)).state_dict()},
        random_ckpt)
    runner = distill_run(imagenet_root, str(tmp_path / 'w'), random_ckpt)
    with pytest.raises(RuntimeError, match='near chance'):
        runner.train()
    assert runner.iter == 0
    assert not osp.exists(osp.join(str(tmp_path / 'w'), 'epoch_1.pth'))


def test_explicit_minimum_score_is_applied(imagenet_root, trained_teacher,
                                           tmp_path):
    runner = distill_run(
        imagenet_root, str(tmp_path), trained_teacher, min_teacher_score=101.0)
    with pytest.raises(RuntimeError, match='below `min_teacher_score` 101'):
        runner.train()


def test_weight_schedule_warms_up_and_stops():
    hook = DistillHook(warmup_iters=4, stop_epoch=3)
    scales = [hook.scale(i, epoch=0, iters_per_epoch=10) for i in range(6)]
    assert scales == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert hook.scale(35, epoch=3, iters_per_epoch=10) == 0.0
    by_epoch = DistillHook(warmup_epochs=1, stop_iter=25)
    assert by_epoch.scale(4, 0, 10) == 0.5
    assert by_epoch.scale(24, 2, 10) == 1.0
    assert by_epoch.scale(25, 2, 10) == 0.0
    with pytest.raises(ValueError, match='both be set'):
        DistillHook(warmup_iters=1, warmup_epochs=1)
    # The gate's options name the hook they moved to.
    with pytest.raises(TypeError, match='default_hooks.teacher_gate'):
        DistillHook(check_teacher=False)


@pytest.mark.slow
def test_switched_off_distillation_skips_the_teacher(imagenet_root,
                                                     trained_teacher,
                                                     tmp_path):
    runner = distill_run(
        imagenet_root,
        str(tmp_path),
        trained_teacher,
        enable=False,
        stop_iter=2)
    calls = []
    runner.model.teacher.register_forward_hook(
        lambda *args: calls.append(runner.iter))
    runner.train()
    assert runner.iter == 4 and calls == [0, 1]
    scalars = runner.message_hub.log_scalars['train/loss_dist']
    assert scalars.current() == 0.0


def test_guard_fails_when_the_teacher_was_unfrozen(imagenet_root,
                                                   trained_teacher, tmp_path):
    runner = distill_run(
        imagenet_root, str(tmp_path), trained_teacher, enable=False)
    hook = next(h for h in runner.hooks if isinstance(h, DistillHook))
    hook.before_train(runner)
    hook.check_frozen(runner)  # untouched: fine
    runner.model.teacher.head.fc.weight.requires_grad_(True)
    with pytest.raises(RuntimeError, match='require grad'):
        hook.check_frozen(runner)
    runner.model.teacher.head.fc.weight.requires_grad_(False)
    with torch.no_grad():
        runner.model.teacher.head.fc.weight.add_(1.0)
    with pytest.raises(RuntimeError, match='weights have changed'):
        hook.check_frozen(runner)
    runner.model.teacher.train()
    with pytest.raises(RuntimeError, match='train mode'):
        hook.check_frozen(runner)
