"""The seed's Cityscapes configs train through the Runner on generated data.

Only the data paths, crop and image sizes, loader sizes and iteration counts
change; models, teacher, taps and optimiser are the configs' own. The
DeepLabV3 config trains through mmseg's own tools/train.py
(test_library_tools_seg.py), the PSPNet one through a Runner here.
"""
import os.path as osp

import pytest
import torch
import yaml
from distkd_testing import unformatted
from mmengine.config import Config
from mmengine.runner import Runner

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs', 'mmseg')
DEEPLAB = 'dist_deeplabv3-r101_deeplabv3-r18_4xb2-80k_cityscapes-512x1024.py'
PSPNET = 'dist_deeplabv3-r101_pspnet-r18_4xb2-80k_cityscapes-512x1024.py'
TEACHER = 'deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024'
CROP = (64, 128)  # (h, w): 1/8 of it is an 8x16 logit map.


def shrink(cfg: Config, root: str) -> None:
    """Point the recipe at the generated data and shrink its sizes."""
    # (w, h) scales, as mmseg writes them: half of the 128x256 images.
    scale = (CROP[1], CROP[0])
    cfg.model.student.data_preprocessor.size = CROP
    # Only the student's crop is shrunk: its padding is not the teacher's.
    cfg.model.teacher_preprocess = 'normalize_only'
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[name]
        loader.update(num_workers=0, persistent_workers=False)
        loader.dataset.data_root = root
        for step in loader.dataset.pipeline:
            if step.type in ('RandomResize', 'Resize'):
                step.scale = scale
            elif step.type == 'RandomCrop':
                step.crop_size = CROP


def model_zoo_weights(name: str) -> str:
    import mmseg
    metafile = osp.join(
        osp.dirname(mmseg.__file__), '.mim', 'configs', 'deeplabv3',
        'metafile.yaml')
    with open(metafile) as f:
        models = yaml.safe_load(f)['Models']
    return next(m['Weights'] for m in models if m['Name'] == name)


def one_iteration(cfg: Config, root: str, work_dir: str) -> None:
    """Shrink ``cfg`` to one training iteration, then validation and a
    checkpoint, on the generated data."""
    shrink(cfg, root)
    cfg.train_cfg.update(max_iters=1, val_interval=1)
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.logger.interval = 1
    if 'teacher_gate' in cfg.default_hooks:
        # Random test teachers would stop at the gate (its own test is
        # tests/hooks/test_teacher_gate.py).
        cfg.default_hooks.teacher_gate.enable = False
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=0)


@pytest.mark.parametrize('config,head', [(DEEPLAB, 'ASPPHead'),
                                         (PSPNET, 'PSPHead')])
def test_seg_config_is_the_seed_recipe(config, head):
    cfg = Config.fromfile(osp.join(CONFIGS, config))
    assert cfg.model.type == 'Distiller'
    assert cfg.model.student.backbone.depth == 18
    assert cfg.model.student.decode_head.type == head
    assert cfg.model.student.pretrained == 'open-mmlab://resnet18_v1c'
    assert cfg.model.teacher == f'mmseg::deeplabv3/{TEACHER}.py'
    assert cfg.model.teacher_ckpt == model_zoo_weights(TEACHER)
    assert cfg.model.teacher_forward == dict(type='EncoderDecoderHeads')
    taps = cfg.model.distill_losses
    assert taps.loss_dist.student == taps.loss_dist.teacher == (
        'decode_head.conv_seg')
    assert taps.loss_dist_aux.student == taps.loss_dist_aux.teacher == (
        'auxiliary_head.conv_seg')
    assert taps.loss_dist.loss == dict(
        type='DISTLoss', tau=1.0, loss_weight=1.0)
    assert taps.loss_dist_aux.loss == dict(
        type='DISTLoss', tau=1.0, loss_weight=0.4)
    assert taps.loss_dist.resize_teacher and taps.loss_dist_aux.resize_teacher
    assert cfg.train_cfg.max_iters == 80000
    assert cfg.train_dataloader.dataset.type == 'CityscapesDataset'


@pytest.mark.slow
def test_pspnet_config_trains_and_evaluates_miou(cityscapes_root,
                                                 deeplabv3_r101_ckpt,
                                                 offline_resnet18_v1c,
                                                 tmp_path):
    cfg = unformatted(Config.fromfile(osp.join(CONFIGS, PSPNET)))
    cfg.model.teacher_ckpt = deeplabv3_r101_ckpt
    one_iteration(cfg, cityscapes_root, str(tmp_path / 'work'))
    runner = Runner.from_cfg(cfg)
    runner.train()

    model = runner.model
    # The student's backbone came from open-mmlab://resnet18_v1c, read
    # through mmengine's URL map and the (offline) torch hub cache.
    # An SGD step moved the weights a little; a fresh random init would
    # be uncorrelated with the file's.
    for key in ('stem.0.weight', 'layer4.1.conv2.weight'):
        trained = model.student.backbone.state_dict()[key].flatten()
        loaded = offline_resnet18_v1c[key].flatten()
        assert torch.cosine_similarity(trained, loaded, dim=0) > 0.9, key
    # The teacher is the R101 from its checkpoint, frozen and in eval.
    assert model.teacher.backbone.depth == 101
    saved = torch.load(deeplabv3_r101_ckpt, weights_only=True)['state_dict']
    for key in ('backbone.stem.0.weight', 'decode_head.conv_seg.weight'):
        assert torch.equal(model.teacher.state_dict()[key], saved[key])
    assert not any(m.training for m in model.teacher.modules())

    scalars = runner.message_hub.log_scalars
    for key in ('decode.loss_ce', 'aux.loss_ce', 'loss_dist', 'loss_dist_aux',
                'loss'):
        assert f'train/{key}' in scalars, key
    # mIoU through the student on the generated val images.
    assert 'val/mIoU' in scalars
    miou = scalars['val/mIoU'].current()
    assert 0 <= miou <= 100
