"""Downloads end: a deadline, a minimum rate and a stall limit, each named
with the URL, the cache file and TORCH_HOME; progress in MMEngine's log.

The server is slow by design (one byte per 0.2 s, or a stall
until the test ends) and the limits are a second or less, so nothing here
depends on the machine's speed.
"""
import os
import os.path as osp
import time

import pytest
from distkd_testing import captured_logs

from distkd_mm.utils.checkpoint import load_untrusted
from distkd_mm.utils.download import (DEADLINE_ENV, MIN_RATE_ENV, PROGRESS_ENV,
                                      RATE_WINDOW_ENV, STALL_ENV,
                                      DownloadError, DownloadLimits,
                                      cached_path, download_once)

# A body that takes 50 * 0.2 = 10 s to crawl through.
BODY = 50


@pytest.fixture
def crawl(server):
    (server.root / 'teacher.pth').write_bytes(b'x' * BODY)
    return f'{server.url}/crawl/teacher.pth'


@pytest.fixture
def log_records():
    """What MMEngine's current logger receives during the test."""
    with captured_logs() as records:
        yield records


def _assert_named_and_empty(err: DownloadError, url: str) -> None:
    text = str(err)
    assert url in text and cached_path(url) in text and 'TORCH_HOME' in text
    # Nothing was kept: no file, no partial file.
    assert os.listdir(osp.dirname(cached_path(url))) == []


def test_a_crawling_body_fails_at_the_deadline(server, crawl, monkeypatch):
    monkeypatch.setenv(DEADLINE_ENV, '1')
    monkeypatch.setenv(MIN_RATE_ENV, '0')  # the deadline alone
    start = time.monotonic()
    with pytest.raises(DownloadError, match='did not finish within 1 s') as \
            info:
        load_untrusted(crawl)
    # Long before the crawl would end (a bound of half of it).
    assert time.monotonic() - start < BODY * server.crawl_delay / 2
    assert f'Set {DEADLINE_ENV} (seconds) to allow more' in str(info.value)
    _assert_named_and_empty(info.value, crawl)


def test_a_crawling_body_fails_under_the_minimum_rate(crawl, monkeypatch):
    # 5 bytes/s arrive; 100 bytes/s over any 0.5 s are required.
    monkeypatch.setenv(MIN_RATE_ENV, '100')
    monkeypatch.setenv(RATE_WINDOW_ENV, '0.5')
    with pytest.raises(DownloadError) as info:
        load_untrusted(crawl)
    assert f'under {MIN_RATE_ENV}=100 bytes/s' in str(info.value)
    assert f'{RATE_WINDOW_ENV}=0.5 s' in str(info.value)
    _assert_named_and_empty(info.value, crawl)


def test_headers_that_crawl_fail_at_the_deadline(server, monkeypatch):
    # No read waits the stall limit; the headers alone take 10 s.
    (server.root / 'teacher.pth').write_bytes(b'x' * BODY)
    url = f'{server.url}/slow-headers/teacher.pth'
    monkeypatch.setenv(DEADLINE_ENV, '1')
    monkeypatch.setenv(STALL_ENV, '5')
    start = time.monotonic()
    with pytest.raises(DownloadError, match='did not finish within 1 s') as \
            info:
        load_untrusted(url)
    assert time.monotonic() - start < 50 * server.crawl_delay / 2
    _assert_named_and_empty(info.value, url)


def test_a_stalled_body_fails_after_the_stall_limit(server, monkeypatch):
    (server.root / 'teacher.pth').write_bytes(b'x' * 4096)
    url = f'{server.url}/stall/teacher.pth'
    monkeypatch.setenv(STALL_ENV, '0.5')
    with pytest.raises(DownloadError) as info:
        load_untrusted(url)
    assert 'sent nothing for 0.5 s after 1024 of 4096 bytes' in str(info.value)
    assert STALL_ENV in str(info.value)
    _assert_named_and_empty(info.value, url)


def test_limits_as_arguments_and_progress_in_the_log(crawl, log_records):
    limits = DownloadLimits(deadline=1.2, min_rate=0, progress=0.3)
    with pytest.raises(DownloadError, match='did not finish within 1.2 s'):
        download_once(crawl, limits=limits)
    lines = [r.getMessage() for r in log_records]
    assert lines[0] == (f'Downloading {crawl} ({BODY} bytes) into '
                        f'{cached_path(crawl)}')
    # Small reads: the crawl is reported while it runs.
    progress = [
        line for line in lines if line.startswith(f'Downloading {crawl}: ')
        and f' of {BODY} bytes (' in line
    ]
    assert len(progress) >= 2, lines


def test_limits_from_the_environment_are_checked(monkeypatch):
    assert DownloadLimits.from_env() == DownloadLimits()
    monkeypatch.setenv(DEADLINE_ENV, 'soon')
    with pytest.raises(
            ValueError,
            match=f'`{DEADLINE_ENV}` should be a number >= 0 .* but got '
            "'soon'"):
        DownloadLimits.from_env()
    monkeypatch.setenv(DEADLINE_ENV, '0')
    monkeypatch.setenv(STALL_ENV, '0')
    with pytest.raises(
            ValueError, match=f'`{STALL_ENV}` should be a number '
            '> 0, but got'):
        DownloadLimits.from_env()
    monkeypatch.setenv(STALL_ENV, '5')
    monkeypatch.setenv(PROGRESS_ENV, '0')
    assert DownloadLimits.from_env()[:] == (0., 16384., 300., 5., 0.)
