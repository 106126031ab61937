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


@pytest.mark.parametrize('content,kind', [
    (b'<html><body>Not Found secret-42</body></html>', 'an HTML/XML page'),
    (b'  {"error": "secret-42"}', 'JSON text'),
    (b'secret-42 plain words', 'text'),
    (b'\x00\x01secret-42\xff\xfe', 'binary data of another format'),
])
def test_a_file_of_another_kind_is_named_by_kind_never_quoted(
        tmp_path, content, kind):
    path = write(tmp_path, 'page.pth', content)
    with pytest.raises(CorruptCheckpointError, match=kind) as err:
        load_untrusted(path)
    assert 'secret' not in str(err.value)


def test_zip_file_that_is_no_checkpoint(tmp_path):
    path = tmp_path / 'archive.pth'
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('readme.txt', 'hello')
    with pytest.raises(
            CorruptCheckpointError, match='zip archive but not a PyTorch'):
        load_untrusted(str(path))
