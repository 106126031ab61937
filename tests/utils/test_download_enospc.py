"""A full disk during a download names the URL, the cache folder and
TORCH_HOME, and leaves no partial file (a 64 KiB tmpfs as the disk)."""
import os
import os.path as osp

import pytest
import torch

from distkd_mm.utils.checkpoint import load_untrusted
from distkd_mm.utils.download import DownloadError, cache_dir, cached_path


def test_a_full_disk_names_the_cache_and_keeps_nothing(server, tiny_tmpfs,
                                                       monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tiny_tmpfs))
    # 256 KiB of weights for a 64 KiB disk.
    torch.save({'state_dict': {
        'w': torch.zeros(256, 256)
    }}, str(server.root / 'teacher.pth'))
    url = f'{server.url}/teacher.pth'
    with pytest.raises(DownloadError) as info:
        load_untrusted(url)
    text = str(info.value)
    assert url in text and 'is full' in text
    assert f'the cache folder {cache_dir()}' in text
    assert 'set TORCH_HOME to a folder on a disk with room' in text
    # No partial file fills the disk for the next run.
    assert os.listdir(osp.dirname(cached_path(url))) == []
    stats = os.statvfs(str(tiny_tmpfs))
    assert stats.f_bfree == stats.f_blocks
