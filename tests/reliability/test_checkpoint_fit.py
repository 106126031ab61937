"""Checkpoints load into what they say: tools/test.py on a raw Distiller
checkpoint, teacher_strict=False counts, the resumed teacher, export's
refusals, and the shape error that names its fix."""
import errno
import os
from types import SimpleNamespace

import mmengine
import pytest
import torch
from distkd_testing import (load_tool, run_tool, runner_cfg, save_teacher,
                            tiny_classifier, tiny_distiller, write_config)
from mmengine.config import Config
from mmengine.registry import MODELS
from mmengine.runner import Runner, load_checkpoint

from distkd_mm.hooks import StudentCheckpointHook


@pytest.fixture(scope='module')
def trained(imagenet_root, tmp_path_factory):
    """A 1-epoch Distiller run: its teacher and checkpoint."""
    tmp = tmp_path_factory.mktemp('trained')
    teacher = save_teacher(tmp / 'teacher.pth')
    runner = Runner.from_cfg(
        runner_cfg(imagenet_root, str(tmp / 'work'),
                   tiny_distiller(teacher_ckpt=teacher), 1))
    runner.train()
    return dict(
        tmp=tmp, teacher=teacher, ckpt=str(tmp / 'work' / 'epoch_1.pth'))


@pytest.mark.slow
def test_test_tool_loads_the_student_of_a_distiller_checkpoint(
        trained, imagenet_root, tmp_path):
    plain = write_config(tmp_path / 'student.py', imagenet_root,
                         str(tmp_path / 'test'), tiny_classifier(4), 1)
    exported = str(tmp_path / 'exported.pth')
    run_tool('export_student', trained['ckpt'], exported)
    scores = {}
    for name, ckpt in (('raw', trained['ckpt']), ('exported', exported)):
        out = str(tmp_path / f'{name}.pkl')
        # mmpretrain's test.py dumps every sample's scores with --out.
        run_tool('test', plain, ckpt, '--out', out)
        scores[name] = torch.stack(
            [s['pred_score'] for s in mmengine.load(out)])
    # The same trained weights (seeded random ones would differ from them).
    assert torch.equal(scores['raw'], scores['exported'])


def test_test_tool_refuses_a_checkpoint_that_fits_nothing(
        trained, imagenet_root, tmp_path):
    # Another student (twice as wide): every key exists, no shape fits.
    wide = write_config(tmp_path / 'wide.py', imagenet_root,
                        str(tmp_path / 'test'), tiny_classifier(8), 1)
    out = tmp_path / 'metrics.json'
    with pytest.raises(
            RuntimeError,
            match='(?s)evaluating it would score random weights.*'
            'python tools/export_student.py'):
        run_tool('test', wide, trained['ckpt'], '--out', str(out),
                 '--out-item', 'metrics')
    assert not out.exists()  # refused before any metric


def _fit(model, state: dict, source: str = 'x.pth') -> dict:
    """What StudentCheckpointHook loads of ``state`` into ``model``."""
    checkpoint = {'state_dict': dict(state)}
    runner = SimpleNamespace(model=model, cfg=Config(dict(load_from=source)))
    StudentCheckpointHook().after_load_checkpoint(runner, checkpoint)
    return checkpoint['state_dict']


def test_checkpoint_hook_fits_either_layout_to_the_model(log):
    distiller = MODELS.build(tiny_distiller())
    student = MODELS.build(tiny_classifier(4))
    fitted = _fit(student, distiller.state_dict(), 'distill.pth')
    assert fitted.keys() == student.state_dict().keys()
    assert 'distill.pth is a Distiller checkpoint: loading its' in log()
    fitted = _fit(distiller, student.state_dict())
    assert set(fitted) == {f'student.{k}' for k in student.state_dict()}
    assert 'x.pth is a plain model checkpoint' in log()
    own = distiller.state_dict()
    assert _fit(distiller, own) == own


def test_teacher_strict_false_counts_and_refuses_near_nothing(tmp_path, log):
    # The counts go to MMEngine's current logger (the run's log).
    state = MODELS.build(tiny_classifier(8)).state_dict()
    partial = {k: v for k, v in state.items() if not k.startswith('head.')}
    torch.save({'state_dict': partial}, str(tmp_path / 'partial.pth'))
    MODELS.build(
        tiny_distiller(
            teacher_ckpt=str(tmp_path / 'partial.pth'), teacher_strict=False))
    out = log()
    floats = [k for k, v in state.items() if v.is_floating_point()]
    total = len(floats)
    assert f'{total - 2} of {total} teacher float tensors loaded' in out
    assert 'missing keys (2): head.fc.weight, head.fc.bias' in out

    prefixed = {f'model.{k}': v for k, v in state.items()}
    torch.save({'state_dict': prefixed}, str(tmp_path / 'prefixed.pth'))
    with pytest.raises(RuntimeError, match='matched almost nothing') as err:
        MODELS.build(
            tiny_distiller(
                teacher_ckpt=str(tmp_path / 'prefixed.pth'),
                teacher_strict=False))
    assert f'0 of {total} teacher float tensors loaded' in str(err.value)


def test_half_rule_counts_float_tensors_only(tmp_path):
    # Under half of the float tensors (46 % here; a ResNet-50 file with
    # 37 % passed as 53 %) plus every num_batches_tracked: counting the
    # integer buffers would make it more than half of all tensors.
    state = MODELS.build(tiny_classifier(8)).state_dict()
    floats = [k for k, v in state.items() if v.is_floating_point()]
    ints = [k for k in state if k not in floats]
    kept = floats[:len(floats) // 2 - 2]
    assert (len(kept) + len(ints)) / len(state) > 0.5  # the old count
    torch.save({'state_dict': {
        k: state[k]
        for k in kept + ints
    }}, str(tmp_path / 'part.pth'))
    with pytest.raises(RuntimeError, match='matched almost nothing') as err:
        MODELS.build(
            tiny_distiller(
                teacher_ckpt=str(tmp_path / 'part.pth'), teacher_strict=False))
    assert f'{len(kept)} of {len(floats)} teacher float' in str(err.value)


def test_teacher_of_other_shapes_names_teacher_file_keys_and_shapes(tmp_path):
    # A 1000-class file for a 10-class teacher config file.
    state = MODELS.build(tiny_classifier(8, 1000)).state_dict()
    path = str(tmp_path / 'in1k.pth')
    torch.save({'state_dict': state}, path)
    config = tmp_path / 'teacher_cfg.py'
    config.write_text(f'model = {tiny_classifier(8)!r}\n')
    with pytest.raises(
            RuntimeError,
            match=r"(?s)teacher checkpoint '.*in1k.pth' should have the "
            r"shapes of the teacher model \(ImageClassifier from "
            r"'.*teacher_cfg.py'\).*head\.fc\.weight: file \(1000, 16\) "
            r'vs teacher \(10, 16\)'):
        MODELS.build(tiny_distiller(teacher=str(config), teacher_ckpt=path))


def test_resume_with_another_teacher_warns_naming_both(trained, tmp_path, log):
    other = save_teacher(tmp_path / 'other_teacher.pth')
    model = MODELS.build(tiny_distiller(teacher_ckpt=other))
    # MMEngine's loader, as Runner.resume reads the run's state dict.
    load_checkpoint(model, trained['ckpt'])
    assert 'TEACHER MISMATCH' in log()
    assert repr(trained['teacher']) in log() and repr(other) in log()


class _FullDisk:
    """Fails while pickled, as a full disk fails the write."""

    def __reduce__(self):
        raise OSError(errno.ENOSPC, 'No space left on device')


def test_export_refuses_its_input_and_writes_atomically(trained, tmp_path):
    with pytest.raises(
            ValueError, match='`out` should differ from the input checkpoint'):
        run_tool('export_student', trained['ckpt'], trained['ckpt'])
    assert 'optimizer' in torch.load(trained['ckpt'], weights_only=False)

    out = tmp_path / 'student.pth'
    out.write_bytes(b'previous export')
    # Fails mid-write: the previous file stays, no partial file is left.
    with pytest.raises(OSError, match='No space left'):
        load_tool('export_student').save_atomically(
            {
                'w': torch.ones(3),
                'bad': _FullDisk()
            }, str(out))
    assert out.read_bytes() == b'previous export'
    assert os.listdir(tmp_path) == ['student.pth']


def test_shape_error_names_resize_teacher_when_only_space_differs(make_batch):
    teacher = tiny_classifier(4)
    teacher['backbone']['strides'] = (1, 1)
    model = MODELS.build(
        tiny_distiller(
            teacher=teacher,
            distill_losses=dict(
                loss_feat=dict(
                    student='backbone',
                    teacher='backbone',
                    loss=dict(type='DISTLoss')))))
    data = model.data_preprocessor(make_batch(), True)
    with pytest.raises(
            RuntimeError,
            match='set `resize_teacher=True` in '
            '`distill_losses.loss_feat`'):
        model(**data, mode='loss')


def test_test_tool_refuses_a_head_that_does_not_fit(trained, imagenet_root,
                                                    tmp_path):
    # 7 classes vs the checkpoint's 10: the backbone fits, the head not.
    seven = write_config(tmp_path / 'seven.py', imagenet_root,
                         str(tmp_path / 'test'), tiny_classifier(4, 7), 1)
    out = tmp_path / 'metrics.json'
    with pytest.raises(
            ValueError,
            match=r'(?s)nothing of head\.fc fits.*head\.fc\.weight: '
            r'checkpoint \(10, 8\) vs model \(7, 8\)'):
        run_tool('test', seven, trained['ckpt'], '--out', str(out),
                 '--out-item', 'metrics')
    assert not out.exists()
