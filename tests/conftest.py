"""Shared fixtures: generated datasets and checkpoints."""
import os
import os.path as osp
from unittest import mock

import pytest
import torch
from distkd_testing import REPO, save_random_teacher, write_image_folder


@pytest.fixture(scope='session', autouse=True)
def memoised_config_lookups():
    """``Config.fromfile`` with the same results, minus repeated work.

    For every ``pkg::`` path MMEngine reloads ``pkg_resources`` to see that
    the package is installed, and parses every metafile of its model index
    (mmpretrain: ~170 YAML files): ~0.5 s a config. Here a metafile is
    parsed once per content (path and mtime), and a package once found
    installed stays so (one not found is looked for again).
    """
    import mmengine.config.config as config_module
    import mmengine.config.utils as utils_module
    load, is_installed = utils_module.load, config_module.is_installed
    parsed, installed = {}, set()

    def cached_load(file, *args, **kwargs):
        if args or kwargs or not isinstance(file, str):
            return load(file, *args, **kwargs)
        key = (file, os.stat(file).st_mtime_ns)
        if key not in parsed:
            parsed[key] = load(file)
        return parsed[key]

    def cached_is_installed(package: str) -> bool:
        if package not in installed and is_installed(package):
            installed.add(package)
        return package in installed

    with mock.patch.object(utils_module, 'load', cached_load), \
            mock.patch.object(config_module, 'is_installed',
                              cached_is_installed):
        yield


@pytest.fixture
def one_thread():
    """torch on one CPU thread during the test: small tensors gain nothing
    from two, and on a loaded 2-core machine OpenMP threads waiting for each
    other made a 32 px train step 20x slower (0.3 s against 5-11 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
