"""Detection fixtures: a generated COCO dataset, offline weights, configs."""
import os
import os.path as osp
from typing import Callable, Dict

import pytest
import torch
from det_helpers import TRAIN_SIZES, VAL_SIZES, det_runner_cfg, write_coco
from distkd_testing import save_random_teacher

pytest.importorskip('mmdet')
pytest.importorskip('pycocotools')


@pytest.fixture(scope='session')
def coco_root(tmp_path_factory) -> str:
    """A tiny COCO-format dataset: 4 train and 2 val images with shapes."""
    root = str(tmp_path_factory.mktemp('coco'))
    write_coco(root, 'train', TRAIN_SIZES, seed=0)
    write_coco(root, 'val', VAL_SIZES, seed=1)
    return root


@pytest.fixture(scope='session')
def _torch_home(tmp_path_factory) -> str:
    """A torch home holding a random ResNet-50 in torchvision's layout."""
    import torchvision
    from mmengine.runner.checkpoint import get_torchvision_models

    from distkd_mm.utils.download import cached_path
    home = str(tmp_path_factory.mktemp('torch_home'))
    folder = osp.join(home, 'hub', 'checkpoints')
    os.makedirs(folder)
    # Where distkd_mm's download cache keeps `torchvision://resnet50`'s URL.
    url = get_torchvision_models()['resnet50']
    path = cached_path(url, folder)
    os.makedirs(osp.dirname(path))
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet50().state_dict(), path)
    return home


@pytest.fixture
def offline_resnet50(_torch_home, monkeypatch) -> str:
    """Let the students' `torchvision://resnet50` init load offline.

    The configs keep their ``Pretrained`` init: only the hub cache moves to
    a folder where the file MMEngine would download already is, so the real
    loading path runs.
    """
    monkeypatch.setenv('TORCH_HOME', _torch_home)
    # A stand-in file cannot have the hash its URL's file name pins.
    monkeypatch.setenv('DISTKD_MM_HASH_CHECK', '0')
    return _torch_home


@pytest.fixture(scope='session')
def teacher_ckpts(tmp_path_factory) -> Callable[[str], str]:
    """``get(config)``: a checkpoint file of that config's teacher.

    Made once per teacher, in the model zoo's ``{'state_dict': ...}`` form.
    """
    from mmengine.config import Config
    folder = tmp_path_factory.mktemp('teachers')
    made: Dict[str, str] = {}

    def get(config: str) -> str:
        teacher = Config.fromfile(config).model.teacher
        key = str(teacher)
        if key not in made:
            path = str(folder / f'teacher_{len(made)}.pth')
            made[key] = save_random_teacher(teacher, path)
        return made[key]

    return get


@pytest.fixture
def make_det_cfg(coco_root, teacher_ckpts, offline_resnet50,
                 tmp_path) -> Callable:
    """``make(config)``: a Runner config of ``config`` for the tiny data."""

    def make(config: str, name: str = 'work'):
        return det_runner_cfg(config, coco_root, str(tmp_path / name),
                              teacher_ckpts(config))

    return make
