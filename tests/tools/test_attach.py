"""Attaching a teacher to a plain config: the function and --teacher."""
import os.path as osp

import pytest
import torch
from distkd_testing import cli, save_teacher, tiny_classifier, write_config
from mmengine.config import Config

from distkd_mm.apis.attach import attach_teacher, guess_preset


def test_teacher_on_the_command_line_trains_a_plain_mmpretrain_config(
        imagenet_root, tmp_path):
    plain = write_config(tmp_path / 'plain.py', imagenet_root,
                         str(tmp_path / 'work'), tiny_classifier(4), 1)
    teacher_cfg = tmp_path / 'teacher.py'
    teacher_cfg.write_text(f'model = {tiny_classifier(8)!r}\n')
    ckpt = save_teacher(tmp_path / 'teacher.pth')
    result = cli([
        'tools/train.py', plain, '--teacher',
        str(teacher_cfg), '--teacher-ckpt', ckpt, '--cfg-options',
        'log_level=INFO'
    ], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'loss_dist' in result.stdout
    # Its own work dir, next to the student config's (`work`).
    saved = torch.load(
        osp.join(tmp_path, 'dist_teacher_plain', 'epoch_1.pth'),
        weights_only=False)
    keys = list(saved['state_dict'])
    assert any(k.startswith('student.head.fc') for k in keys)
    assert not any(k.startswith('teacher.') for k in keys)


def test_distill_flags_without_teacher_are_rejected(imagenet_root, tmp_path):
    plain = write_config(tmp_path / 'plain.py', imagenet_root,
                         str(tmp_path / 'work'), tiny_classifier(4), 1)
    result = cli(['tools/train.py', plain, '--distill', 'cls'], tmp_path)
    assert result.returncode != 0
    assert 'should come with `--teacher`' in result.stderr
    assert not osp.exists(tmp_path / 'work')


@pytest.mark.parametrize('student_type,preset', [
    ('ImageClassifier', 'cls'),
    ('mmdet.RetinaNet', 'retinanet'),
    ('FasterRCNN', 'two-stage'),
    ('EncoderDecoder', 'seg'),
])
def test_preset_is_guessed_from_the_student_type(student_type, preset):
    assert guess_preset(dict(type=student_type)) == preset


def test_unknown_student_type_or_preset_is_explained(tmp_path):
    with pytest.raises(ValueError, match="no preset is known for it"):
        guess_preset(dict(type='YOLOX'))
    cfg = Config(dict(model=tiny_classifier(4)))
    teacher_cfg = tmp_path / 'teacher.py'
    teacher_cfg.write_text(f'model = {tiny_classifier(8)!r}\n')
    with pytest.raises(ValueError, match="Did you mean \\['cls'\\]"):
        attach_teacher(cfg, str(teacher_cfg), preset='clss')


def test_attach_keeps_the_student_and_adds_the_plugin_import(tmp_path):
    teacher_cfg = tmp_path / 'teacher.py'
    teacher_cfg.write_text(f'model = {tiny_classifier(8)!r}\n')
    cfg = Config(dict(model=tiny_classifier(4)))
    out = attach_teacher(cfg, str(teacher_cfg), 'ckpt.pth')
    assert cfg.model.type == 'mmpretrain.ImageClassifier'  # untouched
    assert out.model.type == 'Distiller'
    assert out.model.student == cfg.model
    assert out.model.teacher_ckpt == 'ckpt.pth'
    assert out.model.distill_losses.loss_dist.loss.loss_weight == 2.0
    assert 'distkd_mm' in out.custom_imports.imports
    with pytest.raises(ValueError, match='already a Distiller'):
        attach_teacher(out, str(teacher_cfg))
