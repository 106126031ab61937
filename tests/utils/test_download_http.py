"""What a real server sends: encoded bodies, redirects, credentials."""
import os
import os.path as osp

import pytest
import torch

from distkd_mm.utils.checkpoint import load_untrusted
from distkd_mm.utils.download import DownloadError, cached_path


@pytest.fixture
def teacher(server):
    torch.save({'state_dict': {
        'w': torch.full((64, 64), 7.)
    }}, str(server.root / 'teacher.pth'))
    return server


@pytest.mark.parametrize('route', ['gzip', 'deflate', 'raw-deflate'])
def test_encoded_bodies_are_decoded(teacher, route):
    url = f'{teacher.url}/{route}/teacher.pth'
    assert (load_untrusted(url)['state_dict']['w'] == 7.).all()
    # The cache holds the checkpoint itself, not its encoding.
    assert open(cached_path(url),
                'rb').read() == (teacher.root / 'teacher.pth').read_bytes()
    # Asked for none: a server that honours it sends the file as it is.
    assert teacher.request_headers[-1]['Accept-Encoding'] == 'identity'


def test_an_unknown_encoding_is_refused_by_name(teacher):
    url = f'{teacher.url}/br/teacher.pth'
    with pytest.raises(
            DownloadError,
            match="Content-Encoding 'br', which is not decoded here"):
        load_untrusted(url)
    assert os.listdir(osp.dirname(cached_path(url))) == []


def test_a_redirect_is_followed_and_cached_under_the_first_url(teacher):
    url = f'{teacher.url}/redirect/teacher.pth'
    assert (load_untrusted(url)['state_dict']['w'] == 7.).all()
    assert osp.isfile(cached_path(url))
    assert teacher.hits == {'/redirect/teacher.pth': 1, '/teacher.pth': 1}
    load_untrusted(url)  # from the cache
    assert teacher.hits['/teacher.pth'] == 1


def test_a_redirect_to_a_local_file_is_refused(teacher):
    url = f'{teacher.url}/redirect-file/teacher.pth'
    with pytest.raises(
            DownloadError,
            match='redirected it to file:///etc/hostname, which is no '
            r'http\(s\) URL \(refused\)'):
        load_untrusted(url)


def test_user_info_is_sent_as_basic_auth_and_never_shown(teacher):
    url = teacher.url.replace('//', '//user:pw@') + '/auth/teacher.pth'
    assert (load_untrusted(url)['state_dict']['w'] == 7.).all()
    wrong = teacher.url.replace('//', '//user:nope@') + '/auth/teacher.pth'
    with pytest.raises(DownloadError, match='answered 401') as info:
        load_untrusted(wrong)
    assert 'nope' not in str(info.value)
    assert f'{teacher.url}/auth/teacher.pth' in str(info.value)
