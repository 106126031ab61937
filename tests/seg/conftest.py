"""Fixtures for segmentation distillation: data, checkpoints, tiny models.

Test modules here use these fixtures rather than importing helpers; the
folder is a package so this file never shadows ``tests/conftest.py`` (which
other folders import as ``conftest``).
"""
import os
import os.path as osp
from typing import Callable, Optional

import numpy as np
import pytest
import torch
from distkd_testing import save_random_teacher
from mmengine.registry import MODELS, DefaultScope

import distkd_mm  # noqa: F401  (registers Distiller, DISTLoss)
import distkd_mm.distillers.teacher_forward  # noqa: F401

IMG_SUFFIX = '_leftImg8bit.png'
SEG_SUFFIX = '_gtFine_labelTrainIds.png'
# Cityscapes train ids used by the generated scenes.
ROAD, BUILDING, VEGETATION, SKY, PERSON, CAR = 0, 2, 8, 10, 11, 13


def draw_scene(rng: np.random.Generator, height: int, width: int) -> tuple:
    """One street-like scene: an image and its train-id label map.

    Sky, buildings, vegetation and road bands, cars (rectangles) and people
    (ellipses) at random places, each class painted in its Cityscapes
    palette colour plus noise; a random blob of ignore (255) pixels, as the
    real masks have for unlabelled regions.
    """
    from mmseg.datasets import CityscapesDataset
    palette = np.array(CityscapesDataset.METAINFO['palette'], np.int16)
    label = np.full((height, width), ROAD, np.uint8)
    horizon = int(height * rng.uniform(0.35, 0.5))
    label[:horizon] = SKY
    split = int(width * rng.uniform(0.3, 0.7))
    roof = int(horizon * rng.uniform(0.1, 0.4))
    label[roof:horizon, :split] = BUILDING
    label[roof:horizon, split:] = VEGETATION
    yy, xx = np.mgrid[:height, :width]
    for _ in range(2):
        h = rng.integers(height // 8, height // 4)
        w = rng.integers(width // 8, width // 4)
        y = rng.integers(horizon, height - h)
        x = rng.integers(0, width - w)
        label[y:y + h, x:x + w] = CAR
    for _ in range(2):
        cy = rng.integers(horizon, height - height // 8)
        cx = rng.integers(width // 10, width - width // 10)
        ry, rx = height // 8, width // 40 + 1
        label[((yy - cy) / ry)**2 + ((xx - cx) / rx)**2 <= 1] = PERSON
    cy, cx = rng.integers(0, height), rng.integers(0, width)
    label[(yy - cy)**2 + (xx - cx)**2 <= (height // 10)**2] = 255
    colours = palette[np.minimum(label, len(palette) - 1)]
    colours[label == 255] = 0
    noise = rng.integers(-20, 21, colours.shape)
    image = np.clip(colours + noise, 0, 255).astype(np.uint8)
    return image, label


def write_cityscapes(root: str,
                     split: str,
                     num_images: int,
                     height: int,
                     width: int,
                     seed: int = 0) -> None:
    """Write ``leftImg8bit/<split>/<city>`` and ``gtFine/<split>/<city>``
    with Cityscapes' file suffixes, so ``CityscapesDataset`` reads them."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    for i in range(num_images):
        city = f'city{i % 2}'
        for folder in ('leftImg8bit', 'gtFine'):
            os.makedirs(osp.join(root, folder, split, city), exist_ok=True)
        image, label = draw_scene(rng, height, width)
        stem = f'{city}_{i:06d}_000019'
        # Cityscapes images are RGB PNGs; labels single-channel (uint8 ->
        # mode 'L') train ids.
        img_dir = osp.join(root, 'leftImg8bit', split, city)
        seg_dir = osp.join(root, 'gtFine', split, city)
        Image.fromarray(image).save(osp.join(img_dir, stem + IMG_SUFFIX))
        Image.fromarray(label).save(osp.join(seg_dir, stem + SEG_SUFFIX))


@pytest.fixture(scope='session')
def cityscapes_root(tmp_path_factory) -> str:
    """A tiny Cityscapes-format dataset: 2 train scenes (one batch of the
    configs' 2) and 1 val scene."""
    root = str(tmp_path_factory.mktemp('cityscapes'))
    write_cityscapes(root, 'train', 2, 128, 256, seed=0)
    write_cityscapes(root, 'val', 1, 128, 256, seed=1)
    return root


@pytest.fixture(scope='session')
def deeplabv3_r101_ckpt(tmp_path_factory) -> str:
    """mmseg's DeepLabV3-R101 Cityscapes teacher with random weights, saved
    as a model-zoo checkpoint file (both seed configs use this teacher)."""
    return save_random_teacher(
        'mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024.py',
        tmp_path_factory.mktemp('teacher') / 'deeplabv3_r101.pth')


# The file name mmengine's `open-mmlab://resnet18_v1c` maps to
# (mmengine/hub/openmmlab.json), as torch.hub caches it.
RESNET18_V1C = 'resnet18_v1c'


@pytest.fixture(scope='session')
def _resnet18_v1c_home(tmp_path_factory) -> tuple:
    from mmengine.runner.checkpoint import get_external_models
    from mmseg.models.backbones import ResNetV1c

    from distkd_mm.utils.download import cached_path
    url = get_external_models()[RESNET18_V1C]
    home = str(tmp_path_factory.mktemp('torch_home'))
    folder = osp.join(home, 'hub', 'checkpoints')
    os.makedirs(folder)
    torch.manual_seed(1)
    state = ResNetV1c(depth=18).state_dict()
    # Where distkd_mm's download cache keeps this URL (keyed by the URL).
    path = cached_path(url, folder)
    os.makedirs(osp.dirname(path))
    torch.save(state, path)
    return home, state


@pytest.fixture
def offline_resnet18_v1c(_resnet18_v1c_home, tmp_path, monkeypatch) -> dict:
    """Serve ``open-mmlab://resnet18_v1c`` from a temporary torch hub cache.

    The R18 students' recipes load it through ``init_cfg``; with a random
    state dict where the download cache keeps that URL, the real loading
    path (mmengine's openmmlab.json -> URL -> distkd_mm's URL-keyed cache
    in torch hub's folder) runs without a network.

    Returns:
        The state dict the students' backbones should end up with.
    """
    home, state = _resnet18_v1c_home
    monkeypatch.setenv('TORCH_HOME', home)
    # A stand-in file cannot have the hash its URL's file name pins.
    monkeypatch.setenv('DISTKD_MM_HASH_CHECK', '0')
    monkeypatch.setenv('MMENGINE_HOME', str(tmp_path / 'mmengine_home'))
    assert torch.hub.get_dir() == osp.join(home, 'hub')
    return state


def tiny_segmentor(decode: str = 'ASPPHead',
                   num_classes: int = 19,
                   width: int = 8,
                   channels: int = 16,
                   output_stride: int = 8,
                   aux: Optional[int] = 1) -> dict:
    """A small mmseg EncoderDecoder (dilated ResNet-18 layout, few channels).

    Args:
        decode: ``'ASPPHead'`` (DeepLabV3), ``'PSPHead'`` or ``'FCNHead'``.
        num_classes: Classes of every head.
        width: Base channels of the backbone (64 in the real ResNet-18).
        channels: Channels inside the decode head.
        output_stride: 8 (dilated layers 3 and 4, as the seed) or 16.
        aux: None for no auxiliary head, 1 for one FCN head on layer 3,
            2 for a list of two (a ``ModuleList``, on layers 2 and 3).
    """
    strides = (1, 2, 1, 1) if output_stride == 8 else (1, 2, 2, 1)
    dilations = (1, 1, 2, 4) if output_stride == 8 else (1, 1, 1, 2)
    norm = dict(type='BN', requires_grad=True)
    head = dict(
        type=decode,
        in_channels=width * 8,
        in_index=3,
        channels=channels,
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=norm,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0))
    if decode == 'ASPPHead':
        head.update(dilations=(1, 2, 3, 4))
    elif decode == 'PSPHead':
        head.update(pool_scales=(1, 2, 3, 6))
    else:
        head.update(num_convs=1, concat_input=False)

    def fcn(in_index: int) -> dict:
        return dict(
            type='FCNHead',
            in_channels=width * 2**in_index,
            in_index=in_index,
            channels=channels // 2,
            num_convs=1,
            concat_input=False,
            dropout_ratio=0.1,
            num_classes=num_classes,
            norm_cfg=norm,
            align_corners=False,
            loss_decode=dict(type='CrossEntropyLoss', loss_weight=0.4))

    auxiliary = {None: None, 1: fcn(2), 2: [fcn(1), fcn(2)]}[aux]
    return dict(
        type='EncoderDecoder',
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True,
            pad_val=0,
            seg_pad_val=255,
            size=(32, 64)),
        backbone=dict(
            type='ResNetV1c',
            depth=18,
            stem_channels=width,
            base_channels=width,
            num_stages=4,
            out_indices=(0, 1, 2, 3),
            dilations=dilations,
            strides=strides,
            norm_cfg=norm,
            norm_eval=False,
            style='pytorch',
            contract_dilation=True),
        decode_head=head,
        auxiliary_head=auxiliary,
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))


def seg_distill_losses(resize_teacher: bool = True,
                       aux_teacher: str = 'auxiliary_head.conv_seg') -> dict:
    """The seed's two DIST taps, as in configs/mmseg/_base_."""
    return dict(
        loss_dist=dict(
            student='decode_head.conv_seg',
            teacher='decode_head.conv_seg',
            resize_teacher=resize_teacher,
            loss=dict(type='DISTLoss', tau=1.0, loss_weight=1.0)),
        loss_dist_aux=dict(
            student='auxiliary_head.conv_seg',
            teacher=aux_teacher,
            resize_teacher=resize_teacher,
            loss=dict(type='DISTLoss', tau=1.0, loss_weight=0.4)))


@pytest.fixture
def build_seg_distiller() -> Callable:
    """Build a Distiller of two tiny EncoderDecoders in mmseg's scope.

    Call as ``build(student=dict(...), teacher=dict(...), **distiller_kw)``
    with ``tiny_segmentor`` keyword arguments for either side.
    """

    def build(student: Optional[dict] = None,
              teacher: Optional[dict] = None,
              seed: int = 0,
              **kwargs):
        cfg = dict(
            type='Distiller',
            student=tiny_segmentor(**(student or {})),
            teacher=tiny_segmentor(**(teacher or dict(width=16))),
            teacher_forward=dict(type='EncoderDecoderHeads'),
            distill_losses=seg_distill_losses())
        cfg.update(kwargs)
        torch.manual_seed(seed)
        with DefaultScope.overwrite_default_scope('mmseg'):
            model = MODELS.build(cfg)
        model.init_weights()
        return model

    return build


@pytest.fixture
def seg_batch() -> Callable:
    """A preprocessed batch: (N, 3, H, W) inputs and SegDataSamples with
    real label regions (or all 255 when ``ignore_all``)."""

    def make(n: int = 2,
             height: int = 32,
             width: int = 64,
             ignore_all: bool = False,
             seed: int = 0) -> tuple:
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        rng = np.random.default_rng(seed)
        images, samples = [], []
        for _ in range(n):
            image, label = draw_scene(rng, height, width)
            if ignore_all:
                label[:] = 255
            images.append(torch.from_numpy(image).permute(2, 0, 1).float())
            sample = SegDataSample()
            sample.gt_sem_seg = PixelData(
                data=torch.from_numpy(label.astype(np.int64))[None])
            sample.set_metainfo(
                dict(
                    img_shape=(height, width),
                    pad_shape=(height, width),
                    ori_shape=(height, width)))
            samples.append(sample)
        inputs = (torch.stack(images) - 128) / 64
        return inputs, samples

    return make


@pytest.fixture
def segmentor_cfg() -> Callable:
    """``tiny_segmentor`` as a fixture, for tests that build one model."""
    return tiny_segmentor


@pytest.fixture
def seg_taps() -> Callable:
    """``seg_distill_losses`` as a fixture."""
    return seg_distill_losses
