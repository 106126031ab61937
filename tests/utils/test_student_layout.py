"""The student layout of Distiller checkpoints: recognised, extracted
(averaged and raw weights of an EMA run) and exported, without a Runner.

The EMA checkpoints are made as MMEngine's EMAHook makes them: the averaged
model's state swapped into ``state_dict`` by the hooks' own swap.
"""
import pytest
import torch
from distkd_testing import run_tool, tiny_distiller
from mmengine.hooks import EMAHook
from mmengine.model import ExponentialMovingAverage
from mmengine.registry import MODELS

from distkd_mm.hooks import StudentEMAHook
from distkd_mm.utils.student_layout import (DISTILLER, DISTILLER_EMA, PLAIN,
                                            as_distiller_state,
                                            as_student_state,
                                            checkpoint_layout, export_student,
                                            student_state, student_weights)


@pytest.fixture
def distiller():
    torch.manual_seed(0)
    return MODELS.build(tiny_distiller())


def ema_checkpoint(distiller, whole_model: bool) -> dict:
    """A checkpoint of a run with an EMA whose averaged weights are the
    raw ones + 1: of the student (StudentEMAHook) or of the whole
    Distiller (MMEngine's EMAHook)."""
    averaged = distiller if whole_model else distiller.student
    ema = ExponentialMovingAverage(averaged)
    with torch.no_grad():
        for value in ema.module.state_dict().values():
            if value.is_floating_point():
                value += 1
    checkpoint = dict(
        meta=dict(epoch=3),
        state_dict=distiller.state_dict(),
        ema_state_dict=ema.state_dict())
    if whole_model:
        EMAHook()._swap_ema_state_dict(checkpoint)
    else:
        hook = StudentEMAHook()
        hook.prefix = 'student.'  # what before_run sets for a Distiller
        hook._swap_ema_state_dict(checkpoint)
    return checkpoint


def test_layouts_are_recognised(distiller):
    student = distiller.student.state_dict()
    assert checkpoint_layout(dict(state_dict=student)) == PLAIN
    assert checkpoint_layout(student) == PLAIN
    assert checkpoint_layout(dict(state_dict=distiller.state_dict())) == \
        DISTILLER
    # Under DDP's `module.` too, as MMEngine's loads strip it.
    wrapped = {f'module.{k}': v for k, v in distiller.state_dict().items()}
    assert checkpoint_layout(wrapped) == DISTILLER
    assert checkpoint_layout(ema_checkpoint(distiller, False)) == \
        DISTILLER_EMA


def test_student_state_and_distiller_state_are_inverse(distiller):
    student = distiller.student.state_dict()
    state = as_distiller_state(student)
    assert set(state) == {
        k
        for k in distiller.state_dict() if k.startswith('student.')
    }
    assert list(student_state(state)) == list(student)
    assert not student_state(student)


def test_any_state_gives_the_students_keys_with_or_without_ddp(distiller):
    student = list(distiller.student.state_dict())
    for state in (distiller.student.state_dict(), distiller.state_dict()):
        wrapped = {f'module.{k}': v for k, v in state.items()}
        assert list(as_student_state(state)) == student
        assert list(as_student_state(wrapped)) == student


@pytest.mark.parametrize('whole_model', [False, True])
def test_ema_runs_give_averaged_or_raw_student_weights(distiller, whole_model):
    raw = {k: v.clone() for k, v in distiller.student.state_dict().items()}
    checkpoint = ema_checkpoint(distiller, whole_model)
    averaged = student_weights(checkpoint)
    trained = student_weights(checkpoint, ema=False)
    assert list(averaged) == list(trained) == list(raw)
    for key, value in raw.items():
        assert torch.equal(trained[key], value)
        offset = 1 if value.is_floating_point() else 0
        assert torch.equal(averaged[key], value + offset)


def test_export_loads_strictly_into_the_student(distiller):
    checkpoint = ema_checkpoint(distiller, False)
    exported = export_student(checkpoint, ema=False)
    assert set(exported) == {'meta', 'state_dict'}
    assert exported['meta'] == dict(
        epoch=3, exported_from='distkd_mm Distiller', student_weights='raw')
    distiller.student.load_state_dict(exported['state_dict'], strict=True)
    plain = export_student(dict(state_dict=distiller.state_dict()))
    assert 'student_weights' not in plain['meta']


def test_a_plain_checkpoint_has_no_student_to_export(distiller):
    with pytest.raises(
            ValueError,
            match='`checkpoint` should come from a Distiller run .* it may '
            'already be a plain model checkpoint'):
        export_student(dict(state_dict=distiller.student.state_dict()))


@pytest.mark.parametrize('raw', [False, True])
def test_export_tool_writes_the_averaged_or_the_raw_student(
        distiller, tmp_path, capsys, raw):
    trained = distiller.student.state_dict()['head.fc.weight'].clone()
    src, out = str(tmp_path / 'epoch_3.pth'), str(tmp_path / 'student.pth')
    torch.save(ema_checkpoint(distiller, False), src)
    run_tool('export_student', src, out, *(['--raw'] if raw else []))
    exported = torch.load(out, weights_only=True)['state_dict']
    assert torch.equal(exported['head.fc.weight'], trained + (not raw))
    assert ('(raw)' if raw else '(EMA)') in capsys.readouterr().out
