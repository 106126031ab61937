"""Checkpoints load into what they say: tools/test.py on a raw Distiller
checkpoint, teacher_strict=False counts, the resumed teacher, export's
refusals, and the shape error that names its fix."""
import glob
import os
import os.path as osp

import mmengine
import pytest
import torch
from distkd_testing import (cli, load_tool, runner_cfg, save_teacher,
                            tiny_classifier, tiny_distiller, write_config)
from mmengine.logging import MMLogger
from mmengine.registry import MODELS
from mmengine.runner import Runner


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


def test_test_tool_loads_the_student_of_a_distiller_checkpoint(
        trained, imagenet_root, tmp_path):
    plain = write_config(tmp_path / 'student.py', imagenet_root,
                         str(tmp_path / 'test'), tiny_classifier(4), 1)
    exported = str(tmp_path / 'exported.pth')
    assert cli(['tools/export_student.py', trained['ckpt'], exported],
               tmp_path).returncode == 0
    scores = {}
    for name, ckpt in (('raw', trained['ckpt']), ('exported', exported)):
        out = str(tmp_path / f'{name}.pkl')
        # mmpretrain's test.py dumps every sample's scores with --out.
        result = cli(['tools/test.py', plain, ckpt, '--out', out], tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        scores[name] = torch.stack(
            [s['pred_score'] for s in mmengine.load(out)])
        if name == 'raw':
            assert 'is a Distiller checkpoint: loading its' in result.stdout
    # The same trained weights (seeded random ones would differ from them).
    assert torch.equal(scores['raw'], scores['exported'])


def test_test_tool_refuses_a_checkpoint_that_fits_nothing(
        trained, imagenet_root, tmp_path):
    # Another student (twice as wide): every key exists, no shape fits.
    wide = write_config(tmp_path / 'wide.py', imagenet_root,
                        str(tmp_path / 'test'), tiny_classifier(8), 1)
    result = cli(['tools/test.py', wide, trained['ckpt']], tmp_path)
    assert result.returncode != 0
    assert 'evaluating it would score random weights' in result.stderr
    assert 'python tools/export_student.py' in result.stderr
    assert 'accuracy/top1' not in result.stdout


def test_teacher_strict_false_counts_and_refuses_near_nothing(tmp_path):
    # The counts go to MMEngine's current logger (the run's log).
    log = tmp_path / 'build.log'
    MMLogger.get_instance('strict_test', log_file=str(log), log_level='INFO')
    state = MODELS.build(tiny_classifier(8)).state_dict()
    partial = {k: v for k, v in state.items() if not k.startswith('head.')}
    torch.save({'state_dict': partial}, str(tmp_path / 'partial.pth'))
    MODELS.build(
        tiny_distiller(
            teacher_ckpt=str(tmp_path / 'partial.pth'), teacher_strict=False))
    out = log.read_text()
    total = len(state)
    assert f'{len(partial)} of {total} teacher tensors loaded' in out
    assert 'missing keys (2): head.fc.weight, head.fc.bias' in out

    prefixed = {f'model.{k}': v for k, v in state.items()}
    torch.save({'state_dict': prefixed}, str(tmp_path / 'prefixed.pth'))
    with pytest.raises(RuntimeError, match='matched almost nothing') as err:
        MODELS.build(
            tiny_distiller(
                teacher_ckpt=str(tmp_path / 'prefixed.pth'),
                teacher_strict=False))
    assert f'0 of {total} teacher tensors loaded' in str(err.value)


def test_resume_with_another_teacher_warns_naming_both(trained, imagenet_root,
                                                       tmp_path):
    work = str(tmp_path / 'work')
    os.makedirs(work)
    os.link(trained['ckpt'], osp.join(work, 'epoch_3.pth'))
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work, 'epoch_3.pth'))
    other = save_teacher(tmp_path / 'other_teacher.pth')
    cfg = runner_cfg(imagenet_root, work, tiny_distiller(teacher_ckpt=other),
                     4)
    runner = Runner.from_cfg(dict(cfg, resume=True))
    runner.train()  # resumes (scoped allowlist) and finishes epoch 4
    log = ''.join(
        open(p).read() for p in glob.glob(osp.join(work, '*', '*.log')))
    assert 'TEACHER MISMATCH' in log
    assert repr(trained['teacher']) in log and repr(other) in log


def _export_tool():
    return load_tool('export_student')


def test_export_refuses_its_input_and_writes_atomically(trained, tmp_path):
    result = cli(['tools/export_student.py', trained['ckpt'], trained['ckpt']],
                 tmp_path)
    assert result.returncode != 0
    assert '`out` should differ from the input checkpoint' in result.stderr
    assert 'optimizer' in torch.load(trained['ckpt'], weights_only=False)

    export = _export_tool()
    out = tmp_path / 'student.pth'
    out.write_bytes(b'previous export')
    # Fails mid-write (an object torch.save cannot pickle, as a full disk
    # would): the previous file stays, no partial file is left.
    with pytest.raises(Exception):
        export.save_atomically({
            'w': torch.ones(3),
            'bad': lambda: 0
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
