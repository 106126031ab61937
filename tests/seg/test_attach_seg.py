"""`--teacher` on a plain mmseg config: attach_teacher, then the Runner."""
import pytest
import torch
from distkd_testing import save_random_teacher, unformatted
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner import Runner

from distkd_mm.apis.attach import attach_teacher, load_config
from .test_seg_configs import one_iteration

STUDENT = 'mmseg::deeplabv3/deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py'
TEACHER = 'mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024.py'


@pytest.mark.slow
def test_teacher_attached_to_plain_deeplabv3_config_trains(
        cityscapes_root, deeplabv3_r101_ckpt, offline_resnet18_v1c, tmp_path):
    cfg = unformatted(
        attach_teacher(load_config(STUDENT), TEACHER, deeplabv3_r101_ckpt))
    assert cfg.model.teacher_forward == dict(type='EncoderDecoderHeads')
    assert cfg.model.distill_losses.loss_dist_aux.loss.loss_weight == 0.4
    one_iteration(cfg, cityscapes_root, str(tmp_path / 'work'))
    # The shrunk student pads to its 64x128 crop, the zoo teacher's config
    # to 512x1024: derive mean/std only (the padding check has its own test).
    cfg.model.teacher_preprocess = 'normalize_only'
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1
    scalars = runner.message_hub.log_scalars
    for key in ('decode.loss_ce', 'loss_dist', 'loss_dist_aux'):
        assert f'train/{key}' in scalars, key
    assert 'val/mIoU' in scalars


@pytest.mark.parametrize('student,teacher', [
    (dict(decode='PSPHead'), dict(decode='ASPPHead', width=16)),
    (dict(decode='FCNHead', aux=None), dict(decode='PSPHead', width=16)),
])
def test_teacher_attaches_to_any_decode_head_and_steps(student, teacher,
                                                       segmentor_cfg,
                                                       seg_batch, tmp_path):
    """The ``seg`` preset taps ``decode_head.conv_seg`` of any mmseg decode
    head (the auxiliary term only when both have one auxiliary head)."""
    teacher_path = str(tmp_path / 'teacher.py')
    Config(dict(model=segmentor_cfg(**teacher),
                default_scope='mmseg')).dump(teacher_path)
    ckpt = save_random_teacher(teacher_path, tmp_path / 'teacher.pth')
    cfg = attach_teacher(
        Config(dict(model=segmentor_cfg(**student))), teacher_path, ckpt)
    terms = cfg.model.distill_losses
    assert terms.loss_dist.student == 'decode_head.conv_seg'
    assert ('loss_dist_aux' in terms) == (student.get('aux', 1) is not None)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model.to_dict())
    losses = model(*seg_batch(), mode='loss')
    assert losses['loss_dist'] > 0
    assert all(
        torch.isfinite(v).all() for v in losses.values()
        if isinstance(v, torch.Tensor))
