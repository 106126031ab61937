"""`--teacher` on a plain mmseg config: attach_teacher, then the Runner."""
from distkd_testing import unformatted
from mmengine.runner import Runner

from distkd_mm.apis.attach import attach_teacher, load_config
from .test_seg_configs import one_iteration

STUDENT = 'mmseg::deeplabv3/deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py'
TEACHER = 'mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024.py'


def test_teacher_attached_to_plain_deeplabv3_config_trains(
        cityscapes_root, deeplabv3_r101_ckpt, offline_resnet18_v1c, tmp_path):
    cfg = unformatted(
        attach_teacher(load_config(STUDENT), TEACHER, deeplabv3_r101_ckpt))
    assert cfg.model.teacher_forward == dict(type='EncoderDecoderHeads')
    assert cfg.model.distill_losses.loss_dist_aux.loss.loss_weight == 0.4
    one_iteration(cfg, cityscapes_root, str(tmp_path / 'work'))
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1
    scalars = runner.message_hub.log_scalars
    for key in ('decode.loss_ce', 'loss_dist', 'loss_dist_aux'):
        assert f'train/{key}' in scalars, key
    assert 'val/mIoU' in scalars
