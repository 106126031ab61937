"""A damaged file says what it is (the security refusal is only for code:
tests/reliability/test_allowlist.py)."""
import io
import zipfile

import pytest
import torch

from distkd_mm.utils.checkpoint import CorruptCheckpointError, load_untrusted


@pytest.fixture
def good(tmp_path) -> bytes:
    buffer = io.BytesIO()
    torch.save({'state_dict': {'w': torch.ones(256, 256)}}, buffer)
    return buffer.getvalue()


def write(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_zero_byte_file(tmp_path):
    with pytest.raises(CorruptCheckpointError, match=r'is empty \(0 bytes\)'):
        load_untrusted(write(tmp_path, 'empty.pth', b''))


def test_truncated_file(tmp_path, good):
    half = len(good) // 2
    path = write(tmp_path, 'half.pth', good[:half])
    with pytest.raises(
            CorruptCheckpointError,
            match=rf'\({half} bytes\) is truncated: .*expected a complete'):
        load_untrusted(path)


def test_text_file(tmp_path):
    path = write(tmp_path, 'page.pth', b'<html><body>Not Found</body></html>')
    with pytest.raises(
            CorruptCheckpointError, match="is text, not a checkpoint .*<html"):
        load_untrusted(path)


def test_zip_file_that_is_no_checkpoint(tmp_path):
    path = tmp_path / 'archive.pth'
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('readme.txt', 'hello')
    with pytest.raises(
            CorruptCheckpointError, match='zip archive but not a PyTorch'):
        load_untrusted(str(path))
