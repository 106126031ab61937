"""The seed-protocol Cityscapes configs: networks, converters, training.

Checkpoints "in the seed's format" are state dicts of ``seed_nets`` (module
names of the seed's CIRKD networks). Converted with ``cirkd_segmentation``
they must load strictly into our mmseg modules and give the same logits.
"""
import os.path as osp

import pytest
import torch
from distkd_testing import load_tool, unformatted
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner import Runner

import distkd_mm.models.seg  # noqa: F401  (ResNetV1s, SeedASPPHead)
from distkd_mm.utils.convert import cirkd_to_mmseg
from . import seed_nets

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs', 'mmseg')
SEED_DEEPLAB = ('dist_deeplabv3-r101_deeplabv3-r18_8xb2-40k_'
                'cityscapes-512x1024.py')
SEED_PSPNET = 'dist_deeplabv3-r101_pspnet-r18_8xb2-40k_cityscapes-512x1024.py'
CROP = (64, 128)


def convert(src: str, dst: str) -> dict:
    """tools/convert_cirkd_seg.py's ``convert``."""
    return load_tool('convert_cirkd_seg').convert(src, dst)


def config_model(config: str, side: str) -> dict:
    """The student or teacher model dict of a seed-protocol config, BN
    instead of SyncBN (one CPU process), no pretrained init."""
    model = Config.fromfile(osp.join(CONFIGS, config)).model[side].to_dict()
    text = repr(model).replace("'SyncBN'", "'BN'")
    model = eval(text)  # only dicts, lists, tuples and literals
    model['backbone'].pop('init_cfg', None)
    return model


def build(model: dict):
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(model).eval()


@pytest.mark.slow
@pytest.mark.parametrize('config,head,side,depth', [
    (SEED_DEEPLAB, 'deeplabv3', 'student', 18),
    (SEED_PSPNET, 'pspnet', 'student', 18),
    (SEED_DEEPLAB, 'deeplabv3', 'teacher', 101),
])
def test_seed_checkpoint_converts_and_gives_the_same_logits(
        config, head, side, depth):
    torch.manual_seed(0)
    seed = seed_nets.SegNet(head, depth).eval()
    seed_nets.randomise_bn(seed)
    ours = build(config_model(config, side))
    converted = cirkd_to_mmseg(seed.state_dict())
    missing, unexpected = ours.load_state_dict(converted, strict=True)
    assert not missing and not unexpected
    x = torch.randn(1, 3, *CROP)
    with torch.no_grad():
        main, aux = seed(x)
        feats = ours.extract_feat(x)
        ours_main = ours.decode_head.forward(feats)
        ours_aux = ours.auxiliary_head.forward(feats)
    assert ours_main.shape == main.shape == (1, 19, CROP[0] // 8, CROP[1] // 8)
    torch.testing.assert_close(ours_main, main, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ours_aux, aux, rtol=1e-4, atol=1e-4)


def test_mmseg_basic_block_alone_is_not_the_seed_network():
    """Why ResNetV1s exists: without its second-conv dilation the same
    weights give different features (mmseg dilates only the first conv)."""
    from mmseg.models.backbones import ResNetV1c
    torch.manual_seed(0)
    seed = seed_nets.ResNetV1s(18).eval()
    seed_nets.randomise_bn(seed)
    plain = ResNetV1c(
        depth=18,
        stem_channels=128,
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        contract_dilation=True)
    plain.eval()  # mmseg's ResNet.train() returns None: no chaining
    state = {
        k[len('backbone.'):]: v
        for k, v in cirkd_to_mmseg(seed.state_dict()).items()
    }
    plain.load_state_dict(state, strict=True)
    x = torch.randn(1, 3, *CROP)
    with torch.no_grad():
        assert not torch.allclose(plain(x)[3], seed(x)[3], atol=1e-3)


def test_backbone_file_converts_without_its_classifier(tmp_path):
    """The students' ImageNet file: un-prefixed ResNet keys plus ``fc``."""
    torch.manual_seed(0)
    state = seed_nets.ResNetV1s(18).state_dict()
    state['fc.weight'] = torch.randn(1000, 512)
    state['fc.bias'] = torch.randn(1000)
    src, dst = str(tmp_path / 'resnet18-imagenet.pth'), str(tmp_path / 'o')
    torch.save(state, src)
    out = convert(src, dst)
    keys = set(out['state_dict'])
    assert all(k.startswith('backbone.') for k in keys)
    assert 'backbone.stem.6.weight' in keys and not any('fc' in k
                                                        for k in keys)
    assert torch.load(dst, weights_only=True)['meta']['converted_from'] == src


def test_unknown_key_is_refused():
    with pytest.raises(ValueError, match="seed's segmentation"):
        cirkd_to_mmseg({'decoder.weight': torch.zeros(1)})


def _seed_files(tmp_path) -> tuple:
    """The two files the seed's scripts load, written in its formats."""
    torch.manual_seed(1)
    teacher = seed_nets.SegNet('deeplabv3', 101)
    teacher_file = str(tmp_path / 'deeplabv3_resnet101_citys_best_model.pth')
    torch.save(teacher.state_dict(), teacher_file)  # a bare state dict
    backbone = seed_nets.ResNetV1s(18).state_dict()
    src = str(tmp_path / 'resnet18-imagenet.pth')
    torch.save(backbone, src)
    converted = str(tmp_path / 'resnet18-imagenet_mmseg.pth')
    convert(src, converted)
    return teacher_file, teacher.state_dict(), converted, backbone


@pytest.mark.slow
def test_seed_protocol_config_trains_a_few_iterations(cityscapes_root,
                                                      tmp_path):
    cfg = unformatted(Config.fromfile(osp.join(CONFIGS, SEED_DEEPLAB)))
    teacher_file, teacher_state, backbone_file, backbone = _seed_files(
        tmp_path)
    cfg.model.teacher_ckpt = teacher_file  # read raw, via the converter
    cfg.model.student.backbone.init_cfg.checkpoint = backbone_file
    cfg.model.student.data_preprocessor.size = CROP
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[name]
        loader.update(num_workers=0, persistent_workers=False)
        loader.dataset.data_root = cityscapes_root
        for step in loader.dataset.pipeline:
            if step.type == 'RandomChoiceResize':
                # The seed's ratios 0.5..2.0 of a 128x256 image.
                step.scales = [(256 * r // 10, 128 * r // 10)
                               for r in range(5, 21)]
            elif step.type == 'Resize':
                step.scale = (256, 128)
            elif step.type == 'RandomCrop':
                step.crop_size = CROP
    cfg.train_cfg.update(max_iters=1, val_interval=1)
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.teacher_gate.enable = False  # a random teacher
    # Only the student's crop is shrunk: its padding is not the teacher's.
    cfg.model.teacher_preprocess = 'normalize_only'
    cfg.work_dir = str(tmp_path / 'work')
    cfg.randomness = dict(seed=0)
    runner = Runner.from_cfg(cfg)
    runner.train()

    model = runner.model
    assert type(model.student.backbone).__name__ == 'ResNetV1s'
    assert model.student.backbone.stem[6].out_channels == 128
    # The teacher is the seed's file, converted at load time.
    ours = model.teacher.state_dict()
    for seed_key, key in (('pretrained.conv1.weight',
                           'backbone.stem.0.weight'),
                          ('head.aspp.b4.gap.1.weight',
                           'decode_head.image_pool.1.conv.weight'),
                          ('auxlayer.block.4.bias',
                           'auxiliary_head.conv_seg.bias')):
        assert torch.equal(ours[key], teacher_state[seed_key]), key
    # The student's backbone started from the seed's ImageNet file.
    trained = model.student.backbone.state_dict()['stem.0.weight'].flatten()
    assert torch.cosine_similarity(
        trained, backbone['conv1.weight'].flatten(), dim=0) > 0.9
    scalars = runner.message_hub.log_scalars
    for key in ('decode.loss_ce', 'aux.loss_ce', 'loss_dist', 'loss_dist_aux',
                'val/mIoU'):
        assert (key if '/' in key else f'train/{key}') in scalars, key
    # The lr follows the seed's poly with its 1e-4 floor: after one step,
    # the lr of the next.
    assert scalars['train/lr'].current() == 0.02
    lr = runner.optim_wrapper.get_lr()['lr'][0]
    assert lr == pytest.approx(1e-4 + (0.02 - 1e-4) * (1 - 1 / 40000)**0.9)
    assert osp.exists(osp.join(cfg.work_dir, 'best_mIoU_iter_1.pth'))
