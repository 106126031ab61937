"""The ImageNet DIST config trains through the Runner on generated data."""
import os.path as osp

import pytest
from distkd_testing import REPO, save_random_teacher, unformatted
from mmengine.config import Config
from mmengine.runner import Runner

CONFIG = osp.join(REPO, 'configs/mmpretrain',
                  'dist_r34-mmpretrain_r18_8xb32-100e_in1k.py')


def shrink_data(cfg: Config, root: str, size: int = 32) -> None:
    """Only dataset paths and sizes change; the recipe stays as it is: two
    training iterations, one validation iteration."""
    for loader, images in (('train_dataloader', 4), ('val_dataloader', 2),
                           ('test_dataloader', 2)):
        loader = cfg[loader]
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        loader.dataset.data_root = root
        loader.dataset.indices = images
        for step in loader.dataset.pipeline:
            if step.type == 'RandomResizedCrop':
                step.scale = size
            elif step.type == 'ResizeEdge':
                step.scale = size + size // 7
            elif step.type == 'CenterCrop':
                step.crop_size = size


@pytest.mark.slow
def test_imagenet_dist_r34_r18_config_trains_and_evaluates(
        imagenet_root, tmp_path):
    cfg = unformatted(Config.fromfile(CONFIG))
    assert cfg.model.type == 'Distiller'
    assert cfg.model.student.backbone.depth == 18
    assert cfg.model.distill_losses.loss_dist.loss == dict(
        type='DISTLoss', tau=1.0, loss_weight=2.0)
    assert cfg.model.teacher_ckpt.startswith('https://download.openmmlab')

    cfg.model.teacher_ckpt = save_random_teacher(cfg.model.teacher,
                                                 str(tmp_path / 'r34.pth'))
    shrink_data(cfg, imagenet_root)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.train_cfg.max_epochs = 1
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.teacher_gate.enable = False  # a random teacher
    runner = Runner.from_cfg(cfg)
    runner.train()

    assert type(runner.model.teacher.backbone).__name__ == 'ResNet'
    assert runner.model.teacher.backbone.depth == 34
    scalars = runner.message_hub.log_scalars
    assert 'train/loss_dist' in scalars and 'train/loss' in scalars
    assert 'val/accuracy/top1' in scalars
