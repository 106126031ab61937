"""Safe, cached checkpoint loading against a loopback HTTP server
(the ``server`` fixture of tests/utils/conftest.py)."""
import hashlib
import os
import os.path as osp

import pytest
import torch
from distkd_testing import (save_random_teacher, save_teacher, tiny_classifier,
                            tiny_distiller)
from mmengine.registry import MODELS
from mmengine.runner import CheckpointLoader

from distkd_mm.utils.checkpoint import load_untrusted
from distkd_mm.utils.download import HASH_CHECK_ENV, cached_path


def sha256_prefix(path) -> str:
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()[:8]


def test_url_teacher_downloads_once_and_then_uses_the_cache(server):
    path = save_teacher(server.root / 'teacher.pth')
    state = torch.load(path, weights_only=True)['state_dict']
    url = f'{server.url}/teacher.pth'
    for _ in range(2):
        model = MODELS.build(tiny_distiller(teacher_ckpt=url))
        assert torch.equal(model.teacher.head.fc.weight,
                           state['head.fc.weight'])
    assert server.hits == {'/teacher.pth': 1}
    # Keyed by the whole URL, under its readable name.
    assert osp.isfile(cached_path(url))
    assert osp.basename(cached_path(url)) == 'teacher.pth'


def test_interrupted_download_leaves_nothing_in_the_cache(server):
    save_teacher(server.root / 'teacher.pth')
    url = f'{server.url}/drop-cl/teacher.pth'
    for hits in (1, 2):
        with pytest.raises(RuntimeError, match='stopped after .* of .* bytes'):
            load_untrusted(url)
        # Nothing under the final name, no partial file: the next try
        # downloads again instead of trusting a partial file.
        assert os.listdir(osp.dirname(cached_path(url))) == []
        assert server.hits['/drop-cl/teacher.pth'] == hits


def test_file_whose_name_carries_a_hash_is_verified(server):
    save_teacher(server.root / 'tmp.pth')
    good = f'teacher-{sha256_prefix(server.root / "tmp.pth")}.pth'
    os.rename(server.root / 'tmp.pth', server.root / good)
    (server.root / 'teacher-0000000a.pth').write_bytes(
        (server.root / good).read_bytes())

    with pytest.raises(RuntimeError, match='(?i)hash'):
        load_untrusted(f'{server.url}/teacher-0000000a.pth')
    assert not osp.exists(cached_path(f'{server.url}/teacher-0000000a.pth'))
    assert 'state_dict' in load_untrusted(f'{server.url}/{good}')
    assert osp.isfile(cached_path(f'{server.url}/{good}'))


def test_code_executing_pickle_from_a_url_is_refused_by_mmengine_too(
        server, tmp_path):
    marker = tmp_path / 'pwned'

    class Payload:

        def __reduce__(self):
            return (open, (str(marker), 'w'))

    torch.save({
        'state_dict': {},
        'meta': Payload()
    }, str(server.root / 'evil.pth'))
    # The path MMEngine takes for `load_from` and backbone `init_cfg`.
    with pytest.raises(RuntimeError, match='Refused to load'):
        CheckpointLoader.load_checkpoint(f'{server.url}/evil.pth')
    assert not marker.exists()


def test_zoo_schemes_resolve_to_their_cached_download(server, monkeypatch):
    # torchvision://resnet18 maps to torchvision's URL; a file already in
    # the cache under that URL is used without any network. (Its content is
    # not what the name's hash pins, so the check is switched off here.)
    from distkd_mm.utils.checkpoint import resolve
    path = cached_path(resolve('torchvision://resnet18'))
    assert path.endswith('resnet18-f37072fd.pth')
    os.makedirs(osp.dirname(path))
    torch.save({'fc.weight': torch.ones(2)}, path)
    monkeypatch.setenv(HASH_CHECK_ENV, '0')
    loaded = CheckpointLoader.load_checkpoint('torchvision://resnet18')
    assert torch.equal(loaded['fc.weight'], torch.ones(2))
    with pytest.raises(ValueError, match="Close names: \\['resnet18'"):
        load_untrusted('torchvision://resnet81')


@pytest.mark.slow
def test_pretrained_package_config_takes_the_metafile_url(server, monkeypatch):
    from distkd_mm.distillers.teacher import zoo_checkpoint
    config = 'mmpretrain::resnet/resnet34_8xb32_in1k.py'
    url = zoo_checkpoint(config)
    assert url.startswith('https://download.openmmlab.com/')
    assert url.endswith('resnet34_8xb32_in1k_20210831-f257d4e6.pth')
    with pytest.raises(ValueError, match="'pkg::path' teacher config"):
        zoo_checkpoint('configs/some_local_file.py')
    # With the file in the cache, the Distiller gets it with no network.
    # (Not the zoo's bytes, so its name's hash is switched off.)
    os.makedirs(osp.dirname(cached_path(url)))
    r34 = torch.load(
        save_random_teacher(config, cached_path(url)),
        weights_only=True)['state_dict']
    monkeypatch.setenv(HASH_CHECK_ENV, '0')
    model = MODELS.build(
        tiny_distiller(
            student=tiny_classifier(4, num_classes=1000),
            teacher=config,
            teacher_pretrained=True))
    assert torch.equal(model.teacher.head.fc.weight, r34['head.fc.weight'])


def test_an_unsupported_url_is_refused_without_its_token():
    url = 's3://bucket/teacher.pth?X-Amz-Signature=s3cr3t'
    with pytest.raises(FileNotFoundError) as error:
        load_untrusted(url)
    assert "got 's3://bucket/teacher.pth'" in str(error.value)
    assert 's3cr3t' not in str(error.value)
