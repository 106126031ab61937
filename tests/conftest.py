"""Shared fixtures: generated datasets and checkpoints."""
import os
import os.path as osp
import shutil
import tempfile

import pytest
import torch
from distkd_testing import REPO, save_random_teacher, write_image_folder


def pytest_configure(config) -> None:
    """torch on one CPU thread, in every test process (and every command
    line the tests start, see ``distkd_testing.cli``): tiny tensors gain
    nothing from two threads, OpenMP threads waiting for each other made a
    32 px train step 20x slower on a busy 2-core machine, and the second
    core is left to the second pytest-xdist worker. Runs in the test
    process and on the command line then also sum in the same order."""
    torch.set_num_threads(1)
    # The hub cache (``torchvision://`` and URL checkpoints) is the user's
    # folder by default: a test must find only the files it wrote, so each
    # test process (and what it starts) gets an empty one of its own.
    os.environ['TORCH_HOME'] = tempfile.mkdtemp(prefix='distkd_torch_home_')


def pytest_unconfigure(config) -> None:
    shutil.rmtree(os.environ['TORCH_HOME'], ignore_errors=True)


@pytest.fixture
def make_batch():
    """A data batch as a dataloader yields it: uint8 images + samples."""

    def make(n: int = 4, size: int = 16, num_classes: int = 10, seed=0):
        from mmpretrain.structures import DataSample
        g = torch.Generator().manual_seed(seed)
        inputs = [
            torch.randint(
                0, 256, (3, size, size), generator=g, dtype=torch.uint8)
            for _ in range(n)
        ]
        samples = [
            DataSample().set_gt_label(i % num_classes) for i in range(n)
        ]
        return dict(inputs=inputs, data_samples=samples)

    return make


@pytest.fixture(scope='session')
def imagenet_root(tmp_path_factory) -> str:
    """A tiny ImageNet-format dataset (4 classes) for mmpretrain's ImageNet."""
    root = str(tmp_path_factory.mktemp('imagenet'))
    write_image_folder(root, 'train', 4, 4, 48, seed=0)
    write_image_folder(root, 'val', 2, 4, 48, seed=1)
    return root


@pytest.fixture(scope='session')
def demo_teacher_ckpt(tmp_path_factory) -> str:
    """Random weights for the digits demo's teacher, in MMEngine's format."""
    import distkd_mm.datasets  # noqa: F401
    path = tmp_path_factory.mktemp('demo_teacher') / 'teacher.pth'
    return save_random_teacher(
        osp.join(REPO, 'configs/demo/digits_teacher.py'), path)
