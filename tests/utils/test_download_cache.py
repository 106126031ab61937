"""The download cache: keyed by URL, only complete files, verified hashes,
shareable permissions, no stale partial files, one download per node; a
local ``~/`` path is expanded."""
import hashlib
import os
import os.path as osp
import socket
import stat
import time

import pytest
import torch
import torch.multiprocessing as mp
from distkd_testing import captured_logs, save_teacher, tiny_distiller
from mmengine.registry import MODELS

from distkd_mm.utils.checkpoint import CorruptCheckpointError, load_untrusted
from distkd_mm.utils.download import (HASH_CHECK_ENV, cached_path,
                                      download_once, name_hash)


def weights(path, value: float) -> None:
    torch.save({'state_dict': {'w': torch.full((64, 64), value)}}, str(path))


def sha8(path) -> str:
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()[:8]


def test_server_dropping_mid_body_without_content_length_keeps_nothing(server):
    weights(server.root / 'teacher.pth', 1.)
    url = f'{server.url}/drop-nocl/teacher.pth'
    for hits in (1, 2):
        with pytest.raises(
                CorruptCheckpointError,
                match='(?s)truncated.*Nothing was kept'):
            load_untrusted(url)
        assert os.listdir(osp.dirname(cached_path(url))) == []
        assert server.hits['/drop-nocl/teacher.pth'] == hits
    # A complete body without Content-Length is kept (it loads).
    full = f'{server.url}/nocl/teacher.pth'
    assert load_untrusted(full)['state_dict']['w'][0, 0] == 1.
    assert osp.isfile(cached_path(full))


def test_two_urls_sharing_a_file_name_never_share_a_file(server):
    for folder, value in (('a', 1.), ('b', 2.)):
        (server.root / folder).mkdir()
        weights(server.root / folder / 'model.pth', value)
    a = load_untrusted(f'{server.url}/a/model.pth')['state_dict']['w']
    b = load_untrusted(f'{server.url}/b/model.pth')['state_dict']['w']
    assert (a == 1.).all() and (b == 2.).all()
    assert cached_path(f'{server.url}/a/model.pth') != cached_path(
        f'{server.url}/b/model.pth')
    # A 404 never "succeeds" because a file of that name is cached.
    with pytest.raises(RuntimeError, match='answered 404'):
        load_untrusted(f'{server.url}/c/model.pth')


def test_dates_and_step_counts_are_not_hashes(server, monkeypatch):
    for name in ('teacher-20240101.pth', 'checkpoint-100000.pth'):
        assert name_hash(name) is None
        weights(server.root / name, 3.)
        assert load_untrusted(f'{server.url}/{name}')['state_dict']['w'][
            0, 0] == 3.
    assert name_hash('resnet18-f37072fd.pth') == 'f37072fd'
    assert name_hash('r34_in1k_20210831-f257d4e6.pth') == 'f257d4e6'
    monkeypatch.setenv(HASH_CHECK_ENV, '0')
    assert name_hash('resnet18-f37072fd.pth') is None


def test_tampered_cached_file_is_caught_on_the_next_load(server):
    weights(server.root / 'tmp.pth', 4.)
    name = f'teacher-{sha8(server.root / "tmp.pth")}.pth'
    os.rename(server.root / 'tmp.pth', server.root / name)
    url = f'{server.url}/{name}'
    load_untrusted(url)
    # Someone replaces the cached file (a same-size, different tensor).
    weights(cached_path(url), 5.)
    # The notice goes to MMEngine's logger (the work dir's log file).
    with captured_logs() as records:
        loaded = load_untrusted(url)
    assert any('corrupt or was replaced' in r.getMessage() for r in records)
    assert (loaded['state_dict']['w'] == 4.).all()
    assert server.hits[f'/{name}'] == 2


def test_cache_files_follow_the_umask_and_stale_partials_go(server):
    weights(server.root / 'teacher.pth', 1.)
    url = f'{server.url}/teacher.pth'
    folder = osp.dirname(cached_path(url))
    os.makedirs(folder)
    stale = osp.join(folder, 'teacher.pth.x1.partial')
    fresh = osp.join(folder, 'teacher.pth.x2.partial')
    for path in (stale, fresh):
        open(path, 'wb').write(b'half')
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    old_mask = os.umask(0o022)
    try:
        path = download_once(url)
    finally:
        os.umask(old_mask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    # A partial file a live download may still write is left alone.
    assert sorted(os.listdir(folder)) == sorted(
        ['teacher.pth', osp.basename(fresh)])


def _download_in_rank(rank: int, url: str, port: int, out: str) -> None:
    # Forked: the child inherits the server fixture's TORCH_HOME. One
    # node: each rank's LOCAL_RANK, as torchrun sets it.
    os.environ['LOCAL_RANK'] = str(rank)
    torch.distributed.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=2)
    try:
        path = download_once(url)
        with open(osp.join(out, f'rank{rank}'), 'w') as f:
            f.write(path)
    finally:
        torch.distributed.destroy_process_group()


def test_distributed_ranks_share_one_download(server, tmp_path):
    weights(server.root / 'teacher.pth', 1.)
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    url = f'{server.url}/teacher.pth'
    # Fork, not spawn: the ranks start without importing the stack again.
    mp.start_processes(
        _download_in_rank,
        args=(url, port, str(tmp_path)),
        nprocs=2,
        start_method='fork')
    paths = {open(tmp_path / f'rank{r}').read() for r in (0, 1)}
    assert paths == {cached_path(url)}
    assert server.hits == {'/teacher.pth': 1}


def test_a_home_relative_teacher_ckpt_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path))
    save_teacher(tmp_path / 'teacher.pth')
    assert 'state_dict' in load_untrusted('~/teacher.pth')
    distiller = MODELS.build(tiny_distiller(teacher_ckpt='~/teacher.pth'))
    expected = torch.load(str(tmp_path / 'teacher.pth'))['state_dict']
    assert torch.equal(distiller.teacher.head.fc.weight,
                       expected['head.fc.weight'])
