"""Attaching a teacher to a plain config: the function and --teacher."""
import os.path as osp

import pytest
from distkd_testing import REPO, run_tool, tiny_classifier, write_config
from mmengine.config import Config

from distkd_mm.apis.attach import (PRESETS, attach_teacher, guess_preset,
                                   load_config)

CONFIGS = osp.join(REPO, 'configs')
CASCADE = dict(roi_head=dict(type='CascadeRoIHead'))
AUX = dict(auxiliary_head=dict(type='FCNHead'))


def test_distill_flags_without_teacher_are_rejected(imagenet_root, tmp_path):
    """Before anything runs (tools/train.py in this process; a run with
    ``--teacher`` is test_cli_habits.py's)."""
    plain = write_config(tmp_path / 'plain.py', imagenet_root,
                         str(tmp_path / 'work'), tiny_classifier(4), 1)
    with pytest.raises(ValueError, match='should come with `--teacher`'):
        run_tool('train', plain, '--distill', 'cls')
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


@pytest.mark.parametrize('preset,student,teacher,config', [
    ('cls', {}, {}, 'mmpretrain/dist_r34_r18_8xb32-100e_in1k.py'),
    ('kd', {}, {}, 'mmpretrain/kd_r34_r18_8xb32-100e_in1k.py'),
    ('retinanet', {}, {},
     'mmdet/dist_retinanet-x101_retinanet-r50_8xb2-2x_coco.py'),
    ('retinanet+mimic', {}, {},
     'mmdet/dist-mimic_retinanet-x101_retinanet-r50_8xb2-2x_coco.py'),
    ('two-stage', {}, CASCADE,
     'mmdet/dist_cascade-mask-rcnn-x101_faster-rcnn-r50_8xb2-2x_coco.py'),
    ('two-stage+mimic', {}, CASCADE,
     'mmdet/dist-mimic_cascade-mask-rcnn-x101_faster-rcnn-r50_8xb2-2x_'
     'coco.py'),
    ('seg', AUX, AUX,
     'mmseg/dist_deeplabv3-r101_deeplabv3-r18_4xb2-80k_cityscapes-512x1024'
     '.py'),
])
def test_preset_is_the_recipe_of_the_shipped_config(preset, student, teacher,
                                                    config):
    """One source per recipe: a preset gives the terms (and teacher
    forward) its row's config resolves to, for that row's models."""
    model = Config.fromfile(osp.join(CONFIGS, config)).model
    terms = PRESETS[preset](student, teacher)
    assert terms['distill_losses'] == model.distill_losses.to_dict()
    assert terms.get('teacher_forward') == model.get('teacher_forward')


def test_preset_adapts_to_the_models_at_hand():
    two_stage = PRESETS['two-stage']({}, dict(roi_head=dict(type='RoIHead')))
    term = two_stage['distill_losses']['loss_dist']
    assert term['teacher'] == term['student'] == 'roi_head.bbox_head.fc_cls'
    assert set(PRESETS['seg']({}, AUX)['distill_losses']) == {'loss_dist'}
    mimic = PRESETS['retinanet+mimic'](
        dict(neck=dict(out_channels=128, num_outs=4)),
        dict(neck=dict(out_channels=512)))['distill_losses']['loss_mimic']
    assert mimic['connector'] == dict(
        type='FPNAdapter', in_channels=128, out_channels=512, num_levels=4)
    # Each call is a fresh copy: editing one leaves the next as it was.
    term['student'] = 'changed'
    assert PRESETS['two-stage'](
        {}, CASCADE
    )['distill_losses']['loss_dist']['student'] == 'roi_head.bbox_head.fc_cls'


# Plain mmpretrain configs of two head families, shrunk for a CPU step:
# LinearClsHead (with `fc`) and VisionTransformerClsHead (without).
CLS_FAMILIES = [
    ('mmpretrain::resnet/resnet18_8xb32_in1k.py', {}),
    ('mmpretrain::deit/deit-tiny_4xb256_in1k.py',
     dict(
         backbone=dict(
             arch=dict(
                 embed_dims=32,
                 num_layers=2,
                 num_heads=2,
                 feedforward_channels=64),
             img_size=32),
         head=dict(in_channels=32))),
]


@pytest.mark.parametrize('config,shrink', CLS_FAMILIES)
def test_teacher_attaches_to_any_mmpretrain_head_and_steps(
        config, shrink, make_batch, tmp_path):
    """The ``cls`` preset taps what the head returns (``head``), so a ViT
    head (no ``fc``) pairs as a ResNet's does; one finite step."""
    import torch
    from distkd_testing import save_random_teacher
    from mmengine.optim import OptimWrapper
    from mmengine.registry import MODELS, DefaultScope

    plain = load_config(config)
    # Plain assignments: `arch` is a name (a str) in the library's config.
    for part, values in shrink.items():
        plain.model[part].update(values)
    teacher = str(tmp_path / 'teacher.py')
    plain.dump(teacher)
    ckpt = save_random_teacher(teacher, tmp_path / 'teacher.pth')
    cfg = attach_teacher(plain, teacher, ckpt)
    term = cfg.model.distill_losses.loss_dist
    assert term.student == term.teacher == 'head'
    assert cfg.default_hooks.teacher_gate.type == 'TeacherGateHook'
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(
            dict(
                cfg.model.to_dict(),
                data_preprocessor=cfg.get('data_preprocessor')))
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))
    log_vars = model.train_step(make_batch(n=4, size=32), optim)
    assert log_vars['loss_dist'] > 0
    assert all(torch.isfinite(v) for v in log_vars.values())


def test_mask2former_segmentor_is_refused_saying_why():
    plain = load_config(
        'mmseg::mask2former/mask2former_r50_8xb2-90k_cityscapes-512x1024.py')
    for preset in (None, 'seg'):
        with pytest.raises(ValueError) as info:
            attach_teacher(plain, 'unused.py', preset=preset)
        message = str(info.value)
        assert 'Mask2FormerHead student' in message
        assert 'Hungarian assignment' in message
        assert 'loss_dice' not in message and 'loss_mask' not in message


@pytest.mark.slow
def test_teacher_run_stops_a_random_teacher_at_the_gate(
        imagenet_root, tmp_path):
    """``tools/train.py --teacher`` with a random teacher: the gate (on by
    default for --teacher) stops it before the first step."""
    from distkd_testing import save_teacher
    plain = write_config(tmp_path / 'plain.py', imagenet_root,
                         str(tmp_path / 'work'), tiny_classifier(4), 1)
    teacher = tmp_path / 'teacher.py'
    teacher.write_text(f'model = {tiny_classifier(8)!r}\n')
    ckpt = save_teacher(tmp_path / 'random.pth')
    work = tmp_path / 'dist'
    with pytest.raises(RuntimeError, match='near chance') as info:
        run_tool('train', plain, '--teacher', str(teacher), '--teacher-ckpt',
                 ckpt, '--work-dir', str(work))
    assert 'chance = 100 / 4 classes' in str(info.value)
    assert not list(work.rglob('*.pth'))
