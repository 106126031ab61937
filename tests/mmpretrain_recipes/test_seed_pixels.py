"""The seed-protocol classification configs feed the seed's pixels.

The seed resizes with PIL (torchvision transforms on PIL images) and drops
the last partial batch of an epoch. The built pipelines of the seed
configs are compared with torchvision / PIL on a generated image; the
``-mmpretrain`` variants keep mmpretrain's own cv2 pipeline; the
iterations per epoch of the built train loaders are floor(n / batch).
"""
import math
import os.path as osp

import numpy as np
import pytest
import torchvision.transforms as T
from mmcv.transforms import Compose
from mmengine.hub import get_config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from PIL import Image
from recipe_helpers import CONFIGS, load

IN1K_SEED = [
    n for n in CONFIGS if n.endswith('_in1k.py') and '-mmpretrain_' not in n
    and n != 'dist_swin-l_swin-t_16xb64-300e_in1k.py'  # no seed recipe
]
VARIANTS = [n for n in CONFIGS if '-mmpretrain_' in n]
SEED_CLS = IN1K_SEED + [n for n in CONFIGS if n.endswith('_cifar100.py')]
BASELINE = 'dist_r34_r18_8xb32-100e_in1k.py'
B2 = 'dist_r50-sb_r18_8xb96-450e_in1k.py'
RESIZES = ('RandomResizedCrop', 'ResizeEdge')
# Mean absolute difference (in 1/255) under which pixels count as PIL's.
PIL_TOLERANCE = 0.05


@pytest.fixture(scope='module')
def photo(tmp_path_factory):
    """A 375 x 500 (ImageNet's most common size) textured RGB image, as a
    lossless file and as the PIL image the seed's loader opens."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:375, 0:500]
    waves = np.stack([
        128 + 90 * np.sin(x / (5.0 + c) + c) * np.cos(y / (9.0 - c))
        for c in range(3)
    ], -1)
    img = np.clip(waves + rng.normal(0, 12, waves.shape), 0, 255)
    img = img.astype(np.uint8)
    img[120:220, 160:330] = (40, 200, 90)  # sharp edges
    path = str(tmp_path_factory.mktemp('photo') / 'photo.png')
    Image.fromarray(img).save(path)
    return path, Image.open(path).convert('RGB')


def _pipeline(steps) -> Compose:
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return Compose([dict(s) for s in steps])


def _rgb(results: dict) -> np.ndarray:
    """The packed image as an HWC RGB array (mmcv loads BGR)."""
    return results['inputs'].permute(1, 2, 0).numpy()[..., ::-1]


def _unscoped(steps) -> list:
    """A pipeline without the `_scope_` keys MMEngine adds to the steps
    of a `pkg::` base."""
    return [{k: v for k, v in s.items() if k != '_scope_'} for s in steps]


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def _val_pixels(name: str, path: str) -> np.ndarray:
    pipeline = _pipeline(load(name).val_dataloader.dataset.pipeline)
    return _rgb(pipeline(dict(img_path=path)))


@pytest.mark.parametrize('name', IN1K_SEED)
def test_every_seed_imagenet_config_resizes_with_pil(name):
    cfg = load(name)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        steps = [s for s in cfg[loader].dataset.pipeline if s.type in RESIZES]
        assert steps, (name, loader)
        for step in steps:
            assert step.get('backend') == 'pillow', (name, loader, step)
            assert step.get('interpolation', 'bilinear') == 'bilinear'


@pytest.mark.parametrize('name', [BASELINE, B2])
def test_seed_val_pipeline_gives_torchvisions_pixels(name, photo):
    path, pil = photo
    ours = _val_pixels(name, path)
    # The seed's val transform: Resize(256) + CenterCrop(224), bilinear.
    seed = np.asarray(T.Compose([T.Resize(256), T.CenterCrop(224)])(pil))
    assert ours.shape == seed.shape == (224, 224, 3)
    assert _diff(ours, seed) < PIL_TOLERANCE


@pytest.mark.parametrize('name', [BASELINE, B2])
def test_seed_train_crop_gives_pils_pixels(name, photo):
    path, pil = photo
    steps = load(name).train_dataloader.dataset.pipeline
    (crop, ) = [s for s in steps if s.type == 'RandomResizedCrop']
    pipeline = _pipeline([steps[0], crop, dict(type='PackInputs')])
    crop_step = pipeline.transforms[1]
    img = np.asarray(pil)
    for seed in range(5):
        np.random.seed(seed)
        top, left, h, w = crop_step.rand_crop_params(img)
        np.random.seed(seed)  # the same crop inside the pipeline
        ours = _rgb(pipeline(dict(img_path=path)))
        # torchvision's RandomResizedCrop on a PIL image: crop, then resize.
        seed_px = np.asarray(
            pil.crop((left, top, left + w, top + h)).resize((224, 224),
                                                            Image.BILINEAR))
        assert _diff(ours, seed_px) < PIL_TOLERANCE


def test_mmpretrain_variants_keep_mmpretrains_cv2_pipeline(photo):
    # The recipe the variants' teachers were trained with.
    own = get_config('mmpretrain::resnet/resnet34_8xb32_in1k.py')
    for name in VARIANTS:
        cfg = load(name)
        pipeline = cfg.train_dataloader.dataset.pipeline
        assert _unscoped(pipeline) == own.train_pipeline, name
        for loader in ('val_dataloader', 'test_dataloader'):
            pipeline = cfg[loader].dataset.pipeline
            assert _unscoped(pipeline) == own.test_pipeline, name
    # Not PIL's pixels: cv2's bilinear keeps more high frequencies.
    path, pil = photo
    seed = np.asarray(T.Compose([T.Resize(256), T.CenterCrop(224)])(pil))
    assert _diff(_val_pixels(VARIANTS[0], path), seed) > 10 * PIL_TOLERANCE


@pytest.mark.parametrize('name', SEED_CLS + VARIANTS)
def test_classification_configs_drop_the_last_partial_batch(name):
    assert load(name).train_dataloader.drop_last is True


class _Length:
    """A dataset of which the loader needs only the size."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size


@pytest.mark.parametrize('name, images, gpus, seed_iters', [
    ('dist_wrn-40-2_wrn-40-1_1xb64-240e_cifar100.py', 50000, 1, 781),
    (BASELINE, 1281167, 8, 5004),
    (B2, 1281167, 8, 1668),
])
def test_iterations_per_epoch_are_the_seeds(name, images, gpus, seed_iters):
    cfg = load(name).train_dataloader
    # DefaultSampler, as torch's DistributedSampler of the seed, gives each
    # rank ceil(n / gpus) samples.
    cfg.update(num_workers=0, persistent_workers=False)
    cfg['dataset'] = _Length(math.ceil(images / gpus))
    assert len(Runner.build_dataloader(cfg, seed=0)) == seed_iters


@pytest.mark.parametrize(
    'name', [BASELINE, B2, 'dist_resnet56_resnet20_1xb64-240e_cifar100.py'])
def test_an_epoch_of_generated_images_has_floor_n_over_batch_steps(
        name, imagenet_root):
    cfg = load(name).train_dataloader
    # The config's loader (sampler, drop_last, collate) on 16 generated
    # images in batches of 3: 5 iterations, not 6.
    cfg.update(batch_size=3, num_workers=0, persistent_workers=False)
    cfg['dataset'] = dict(
        type='CustomDataset',
        data_root=osp.join(imagenet_root, 'train'),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='PackInputs')])
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        loader = Runner.build_dataloader(cfg, seed=0)
    sizes = [len(batch['inputs']) for batch in loader]
    assert len(loader.dataset) == 16
    assert sizes == [3] * (16 // 3)
