"""A cache that stays a cache: a symbolic link where a key folder or a
cached file belongs (a shared cache anyone can write to) is replaced, never
followed; nothing outside the cache is read, written or removed, and no
file's contents reach a message."""
import hashlib
import io
import os
import os.path as osp
import time

import pytest
import torch
from distkd_testing import captured_logs

from distkd_mm.utils.checkpoint import load_untrusted
from distkd_mm.utils.download import cached_path, discard_cached

PRIVATE = b'private notes of another user: do not read'


def checkpoint_bytes(value: float) -> bytes:
    buffer = io.BytesIO()
    torch.save({'state_dict': {'w': torch.full((64, 64), value)}}, buffer)
    return buffer.getvalue()


@pytest.fixture
def outside(tmp_path):
    """A folder outside the cache that a link may point to, with a text
    file, a checkpoint, a stale partial file and a hash-named file."""
    folder = tmp_path / 'outside'
    folder.mkdir()
    (folder / 'teacher.pth').write_bytes(PRIVATE)
    (folder / 'foreign.pth').write_bytes(checkpoint_bytes(9.))
    stale = folder / 'teacher.pth.x1.partial'
    stale.write_bytes(PRIVATE)
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    return folder


def snapshot(folder) -> dict:
    """Every entry of ``folder``: its kind, contents and mtime."""
    state = {}
    for name in sorted(os.listdir(folder)):
        info = os.lstat(folder / name)
        state[name] = (info.st_mode, info.st_mtime_ns,
                       (folder / name).read_bytes())
    return state


@pytest.fixture
def log_text():
    with captured_logs() as records:
        yield lambda: '\n'.join(r.getMessage() for r in records)


def served(server, name: str, value: float = 7.) -> str:
    (server.root / name).write_bytes(checkpoint_bytes(value))
    return f'{server.url}/{name}'


def hash_named(server) -> str:
    data = checkpoint_bytes(7.)
    name = f'teacher-{hashlib.sha256(data).hexdigest()[:8]}.pth'
    (server.root / name).write_bytes(data)
    return f'{server.url}/{name}'


@pytest.mark.parametrize('hashed', [False, True])
def test_a_symlinked_key_folder_is_replaced_never_followed(
        server, outside, log_text, hashed):
    url = hash_named(server) if hashed else served(server, 'teacher.pth')
    if hashed:
        # Where the hash-mismatch branch used to delete through the link.
        (outside / osp.basename(cached_path(url))).write_bytes(PRIVATE)
    before = snapshot(outside)
    key_folder = osp.dirname(cached_path(url))
    os.makedirs(osp.dirname(key_folder))
    os.symlink(outside, key_folder)

    loaded = load_untrusted(url)

    assert (loaded['state_dict']['w'] == 7.).all()
    assert snapshot(outside) == before
    assert not osp.islink(key_folder) and osp.isdir(key_folder)
    assert os.listdir(key_folder) == [osp.basename(cached_path(url))]
    assert f'{key_folder} should be a folder of the cache, but it was a ' \
           f'symbolic link (to {str(outside)!r})' in log_text()
    assert PRIVATE.decode() not in log_text()


@pytest.mark.parametrize('target', ['teacher.pth', 'foreign.pth'])
def test_a_symlinked_cache_file_is_replaced_never_followed(
        server, outside, log_text, target):
    # A text file (its contents were quoted in the error) or another
    # checkpoint (it was loaded as the teacher).
    url = served(server, 'teacher.pth')
    path = cached_path(url)
    os.makedirs(osp.dirname(path))
    os.symlink(outside / target, path)
    before = snapshot(outside)

    loaded = load_untrusted(url)

    assert (loaded['state_dict']['w'] == 7.).all()
    assert snapshot(outside) == before
    assert not osp.islink(path) and osp.isfile(path)
    assert f'{path} should be a file of the cache, but it was a symbolic ' \
           'link' in log_text()
    assert PRIVATE.decode() not in log_text()
    assert server.hits == {'/teacher.pth': 1}


def test_a_corrupt_file_is_discarded_only_inside_the_cache(server, outside):
    url = served(server, 'teacher.pth')
    path = cached_path(url)
    os.makedirs(osp.dirname(osp.dirname(path)))
    # A key folder swapped for a link after the download: left alone.
    os.symlink(outside, osp.dirname(path))
    before = snapshot(outside)
    discard_cached(url, path)
    assert snapshot(outside) == before
    # A real one is removed.
    os.remove(osp.dirname(path))
    os.makedirs(osp.dirname(path))
    open(path, 'wb').write(b'corrupt')
    discard_cached(url, path)
    assert not osp.exists(path)
