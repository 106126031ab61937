"""A download cache for checkpoints that cannot hang, be poisoned or
confused.

Rules (each one fixes a way a multi-day run lost or mixed up its teacher):

- The cache key is the whole URL: a file lives in
  ``<torch hub>/checkpoints/<sha256(url)[:16]>/<file name>``, so two URLs that
  share a file name never share a file, and the name stays readable. The
  cache moves with ``TORCH_HOME`` (torch hub's folder).
- A cache that stays a cache: the key folder and the file must be a real
  folder and a real file inside the cache (checked with ``lstat``, opened
  with ``O_NOFOLLOW``, written and removed relative to the key folder's
  descriptor). A symbolic link (or anything else) in their place is removed
  and replaced by a fresh download, never followed: nothing outside the
  cache is read, written or removed through it.
- A download is written to ``*.partial`` and renamed to its final name only
  when it is complete: as long as ``Content-Length`` says, or, without that
  header, when it opens as a checkpoint. Partial files older than
  :data:`STALE_PARTIAL_S` (left by a killed process) are removed, and a
  failed download (full disk included) leaves none.
- A name that carries a torch hub / OpenMMLab hash (``name-1a2b3c4d.pth``:
  8 to 64 hex digits, at least one of them a letter, so dates and step
  counts such as ``teacher-20240101.pth`` are not hashes) pins the content:
  it is checked after the download and again on every load. Set
  ``DISTKD_MM_HASH_CHECK=0`` to switch the check off.
- Downloads end. Each limit is an environment variable (or a field of
  :class:`DownloadLimits`, for callers of :func:`download_once`):

  ``DISTKD_MM_DOWNLOAD_DEADLINE`` (seconds, default 21600 = 6 h; 0: none)
      the whole download, the server's headers included (a watchdog closes
      the connection when it passes); a 10 GB teacher at 0.5 MB/s fits.
  ``DISTKD_MM_DOWNLOAD_MIN_RATE`` (bytes/s, default 16384; 0: none) and
  ``DISTKD_MM_DOWNLOAD_RATE_WINDOW`` (seconds, default 300)
      a download that brings less than ``MIN_RATE * RATE_WINDOW`` bytes in
      any such window fails (a server that crawls, one byte at a time).
  ``DISTKD_MM_DOWNLOAD_STALL`` (seconds, default 60)
      the longest wait for the server to connect or to send the next
      bytes. It also bounds how late the minimum rate is checked.
  ``DISTKD_MM_DOWNLOAD_PROGRESS`` (seconds, default 30; 0: none)
      how often MMEngine's logger reports the progress of a download.

  Bodies are read in 64 KiB pieces. Only the downloading process logs.
- A body sent with ``Content-Encoding: gzip`` or ``deflate`` is decoded;
  any other encoding is refused, naming it.
- URLs are written without user-info and query string
  (:mod:`distkd_mm.utils.urls`); user-info is sent as HTTP basic auth, and
  never to another host after a redirect. Redirects go to http(s) only.
- Files get the permissions torch hub's would (``0666`` minus the umask), so a
  shared cache stays readable to the team.
- In a distributed run the first process of each node downloads while the
  others wait at a barrier, then read the same file.

Errors name the URL (redacted), the cache file and ``TORCH_HOME``.
"""
import base64
import errno
import hashlib
import http.client
import logging
import os
import os.path as osp
import re
import socket
import stat
import threading
import time
import zlib
from typing import Callable, NamedTuple, Optional, Tuple
from urllib.error import HTTPError, URLError
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit
from urllib.request import (HTTPHandler, HTTPRedirectHandler, HTTPSHandler,
                            Request, build_opener)

import torch
from mmengine.logging import print_log

from .atomic import atomic_write, remove_stale_temps
from .urls import full_url, has_secret, redact_url

# A torch hub / OpenMMLab hash: '-' then 8-64 hex digits, one a letter.
_HASH_IN_NAME = re.compile(r'-((?=[0-9]*[a-f])[a-f0-9]{8,64})\.[A-Za-z]+$')
HASH_CHECK_ENV = 'DISTKD_MM_HASH_CHECK'
DEADLINE_ENV = 'DISTKD_MM_DOWNLOAD_DEADLINE'
MIN_RATE_ENV = 'DISTKD_MM_DOWNLOAD_MIN_RATE'
RATE_WINDOW_ENV = 'DISTKD_MM_DOWNLOAD_RATE_WINDOW'
STALL_ENV = 'DISTKD_MM_DOWNLOAD_STALL'
PROGRESS_ENV = 'DISTKD_MM_DOWNLOAD_PROGRESS'
# A partial file not written to for this long belongs to a dead process.
STALE_PARTIAL_S = 3600
# Small enough that a slow link still shows progress and meets the limits'
# checks often; large enough that a fast one is not slowed down.
CHUNK = 64 * 1024
_MOVE_HINT = ("The cache is torch hub's checkpoint folder: set TORCH_HOME to "
              'move it.')


class DownloadError(RuntimeError):
    """A download failed; nothing of it was kept in the cache."""


class DownloadLimits(NamedTuple):
    """When a download gives up (see the module docstring).

    Attributes:
        deadline: Seconds for the whole download; 0 for none.
        min_rate: Bytes per second a download must reach in every
            ``rate_window``; 0 for none.
        rate_window: Seconds over which ``min_rate`` is measured.
        stall: Seconds to wait for the server to connect or send more.
        progress: Seconds between progress lines in the log; 0 for none.
    """
    deadline: float = 6 * 3600.
    min_rate: float = 16 * 1024.
    rate_window: float = 300.
    stall: float = 60.
    progress: float = 30.

    @classmethod
    def from_env(cls) -> 'DownloadLimits':
        """The defaults, overridden by the ``DISTKD_MM_DOWNLOAD_*``
        variables."""
        default = cls()
        return cls(
            deadline=_env_seconds(DEADLINE_ENV, default.deadline, zero=True),
            min_rate=_env_seconds(MIN_RATE_ENV, default.min_rate, zero=True),
            rate_window=_env_seconds(RATE_WINDOW_ENV, default.rate_window),
            stall=_env_seconds(STALL_ENV, default.stall),
            progress=_env_seconds(PROGRESS_ENV, default.progress, zero=True))


def _env_seconds(name: str, default: float, zero: bool = False) -> float:
    text = os.environ.get(name, '').strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float('nan')
    if not (value > 0 or (zero and value == 0)):
        bound = '>= 0 (0 switches it off)' if zero else '> 0'
        raise ValueError(f'`{name}` should be a number {bound}, but got '
                         f'{text!r}. Set it to such a number, or unset it '
                         f'for the default {default:g}.')
    return value


def cache_dir() -> str:
    """Where downloaded checkpoints live: torch hub's checkpoint folder."""
    return osp.join(torch.hub.get_dir(), 'checkpoints')


def url_file_name(url: str) -> str:
    """The readable file name of ``url`` (query string removed)."""
    name = osp.basename(url.split('?')[0].split('#')[0])
    # '..' or '.' would name the key folder or the cache itself.
    return name if name not in ('', '.', '..') else 'download'


def cached_path(url: str, directory: Optional[str] = None) -> str:
    """The cache file of ``url``: keyed by the whole URL, readable name.

    A redacted URL that :func:`~distkd_mm.utils.urls.hide_url_secrets`
    stands in for is keyed by the full one.
    """
    url = full_url(url)
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    return osp.join(directory or cache_dir(), key, url_file_name(url))


def name_hash(name: str) -> Optional[str]:
    """The hash prefix a file name pins, or None (also when switched off)."""
    if os.environ.get(HASH_CHECK_ENV, '1').lower() in ('0', 'false', 'no'):
        return None
    match = _HASH_IN_NAME.search(name)
    return match.group(1) if match else None


def sha256_of(path: str) -> str:
    """The sha256 of a file (cache entries use :func:`_sha256_at`)."""
    return _sha256_fd(os.open(path, os.O_RDONLY))


def _sha256_fd(fd: int) -> str:
    digest = hashlib.sha256()
    with os.fdopen(fd, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _sha256_at(folder_fd: int, name: str) -> str:
    return _sha256_fd(
        os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder_fd))


def verify_name_hash(path: str,
                     source: Optional[str] = None,
                     name: Optional[str] = None) -> None:
    """Check a file whose name carries a hash against its content.

    ``name`` is the name to read the hash from (a download's final name,
    while it still sits in its ``*.partial`` file); the file's by default.

    Raises:
        RuntimeError: the content's sha256 does not start with that hash.
    """
    expected = name_hash(name or osp.basename(path))
    if expected is not None:
        _check_hash(expected, sha256_of(path), source or path)


def _check_hash(expected: str, actual: str, source: str) -> None:
    if not actual.startswith(expected):
        raise RuntimeError(
            f'{source} has sha256 {actual}, but its name says it '
            f'should start with {expected!r}: the file is corrupt or was '
            f'replaced. Nothing was loaded. Download it again, or set '
            f'{HASH_CHECK_ENV}=0 if the name only looks like a hash.')


def download_once(url: str,
                  directory: Optional[str] = None,
                  check_complete: Optional[Callable[[str], None]] = None,
                  limits: Optional[DownloadLimits] = None) -> str:
    """Return the cached file of ``url``, downloading it if needed.

    Args:
        url: An ``http(s)://`` URL (or the redacted stand-in of one, see
            :func:`~distkd_mm.utils.urls.hide_url_secrets`).
        directory: The cache root; torch hub's checkpoint folder by default.
        check_complete: Raises when a body that came without
            ``Content-Length`` is not a complete checkpoint.
        limits: When to give up; :meth:`DownloadLimits.from_env` by default.

    Returns:
        The path of the complete, verified file.

    Raises:
        DownloadError: the download failed (naming the URL, the cache file
            and ``TORCH_HOME``); nothing of it was kept.
    """
    url = full_url(url)
    limits = DownloadLimits.from_env() if limits is None else limits
    path = cached_path(url, directory)
    rank, world, local_rank = _dist_ranks()
    if world == 1:
        return _fetch(url, path, check_complete, limits)
    # Every rank reaches the barrier (even when its node has the file), so
    # no rank waits forever; the node's first process downloads.
    error = None
    if local_rank == 0:
        try:
            _fetch(url, path, check_complete, limits)
        except Exception as err:  # re-raised after the barrier
            error = err
    torch.distributed.barrier()
    if error is not None:
        raise error
    return _fetch(url, path, check_complete, limits)


def discard_cached(url: str, path: str) -> None:
    """Remove ``path`` if it is the cache file of ``url`` (found corrupt).

    Only a real file in a real key folder is removed; a symbolic link in
    either place (planted after the download) is left alone, so nothing
    outside the cache is ever removed.
    """
    if path != cached_path(url):
        return  # e.g. torch hub's own copy: not ours to remove
    folder, name = osp.split(path)
    try:
        folder_fd = os.open(folder,
                            os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return
    try:
        info = _lstat_at(folder_fd, name)
        if info is not None and stat.S_ISREG(info.st_mode):
            os.unlink(name, dir_fd=folder_fd)
    except OSError:
        pass  # removed meanwhile, or not ours to remove: the load failed
    finally:
        os.close(folder_fd)


def _dist_ranks() -> tuple:
    if not (torch.distributed.is_available()
            and torch.distributed.is_initialized()):
        return 0, 1, 0
    rank = torch.distributed.get_rank()
    local = int(os.environ.get('LOCAL_RANK', rank))
    return rank, torch.distributed.get_world_size(), local


def _fetch(url: str, path: str, check_complete: Optional[Callable],
           limits: DownloadLimits) -> str:
    shown = redact_url(url)
    folder, name = osp.split(path)
    try:
        folder_fd = _open_key_folder(folder, shown)
        try:
            remove_stale_temps(folder_fd, older_than=STALE_PARTIAL_S)
            if _cached_file_ok(folder_fd, name, path, shown):
                return path
            legacy = _torch_hub_copy(path)
            if legacy is not None:
                return legacy
            _download(url, shown, folder_fd, path, check_complete, limits)
        finally:
            os.close(folder_fd)
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise DownloadError(
            f'Could not download {shown} into the cache file {path}: the '
            f'disk of the cache folder {osp.dirname(folder)} is full '
            f'({err.strerror}). Nothing was kept (the partial file was '
            'removed). Free space there, or set TORCH_HOME to a folder on a '
            'disk with room (the cache is its checkpoints/ folder).') from None
    return path


def _lstat_at(folder_fd: int, name: str) -> Optional[os.stat_result]:
    try:
        return os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _kind(info: os.stat_result) -> str:
    if stat.S_ISLNK(info.st_mode):
        return 'a symbolic link'
    if stat.S_ISDIR(info.st_mode):
        return 'a folder'
    if stat.S_ISREG(info.st_mode):
        return 'a file'
    return 'a special file'


def _open_key_folder(folder: str, shown: str) -> int:
    """A descriptor of the key folder: a real folder inside the cache.

    Whatever else sits at its name (a symbolic link to anywhere, a file) is
    removed (only the entry itself) and a real folder made in its place.
    """
    root, key = osp.split(folder)
    os.makedirs(root, exist_ok=True)
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(3):  # another process may race us at each step
            try:
                return os.open(
                    key,
                    os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                    dir_fd=root_fd)
            except FileNotFoundError:
                try:
                    os.mkdir(key, 0o777, dir_fd=root_fd)
                except FileExistsError:
                    pass
            except OSError as err:
                if err.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                _replace_entry(root_fd, key, folder, shown,
                               'a folder of the cache')
        raise DownloadError(
            f'Could not download {shown}: its cache folder {folder} keeps '
            'being replaced by something that is not a folder. Nothing was '
            f'read or written there. {_MOVE_HINT}')
    finally:
        os.close(root_fd)


def _replace_entry(folder_fd: int, name: str, path: str, shown: str,
                   should_be: str) -> None:
    """Remove the entry ``name`` (never what a link points to), loudly."""
    info = _lstat_at(folder_fd, name)
    if info is None:
        return
    kind = _kind(info)
    if stat.S_ISLNK(info.st_mode):
        kind += f' (to {os.readlink(name, dir_fd=folder_fd)!r})'
    try:
        if stat.S_ISDIR(info.st_mode):
            os.rmdir(name, dir_fd=folder_fd)
        else:
            os.unlink(name, dir_fd=folder_fd)
    except FileNotFoundError:
        return
    except OSError as err:
        raise DownloadError(
            f'Could not download {shown}: {path} should be {should_be}, but '
            f'it is {kind}, and it cannot be removed ({err.strerror}). '
            'Nothing was read or written through it. Remove it, or use a '
            f'cache of your own. {_MOVE_HINT}') from None
    print_log(
        f'{path} should be {should_be}, but it was {kind}: it was removed '
        f'and {shown} is downloaded in its place. Nothing it pointed to was '
        'read, written or removed.',
        logger='current',
        level=logging.WARNING)


def _cached_file_ok(folder_fd: int, name: str, path: str, shown: str) -> bool:
    """Whether the key folder holds a good copy; drops a bad one."""
    info = _lstat_at(folder_fd, name)
    if info is None:
        return False
    if not stat.S_ISREG(info.st_mode):
        _replace_entry(folder_fd, name, path, shown, 'a file of the cache')
        return False
    expected = name_hash(name)
    if expected is None:
        return True
    try:
        _check_hash(expected, _sha256_at(folder_fd, name),
                    f'The cached file {path} of {shown}')
        return True
    except RuntimeError as err:
        # MMEngine's logger: the notice reaches the work dir's log file.
        print_log(
            f'{err} Downloading it again.',
            logger='current',
            level=logging.WARNING)
        os.unlink(name, dir_fd=folder_fd)
        return False


def _torch_hub_copy(path: str) -> Optional[str]:
    """A hash-named file torch hub already cached under its bare name.

    Its hash pins the content, so it is the same file whatever URL it came
    from; an unnamed, mismatching or linked one is ignored.
    """
    name = osp.basename(path)
    legacy = osp.join(osp.dirname(osp.dirname(path)), name)
    if name_hash(name) is None:
        return None
    try:
        if not stat.S_ISREG(os.lstat(legacy).st_mode):
            return None
        verify_name_hash(legacy)
    except (OSError, RuntimeError):
        return None
    return legacy


def _download(url: str, shown: str, folder_fd: int, path: str,
              check_complete: Optional[Callable],
              limits: DownloadLimits) -> None:
    folder, name = osp.split(path)

    def check(partial: str) -> None:
        if expected is None and check_complete is not None:
            check_complete(osp.join(folder, partial))
        digest = name_hash(name)
        if digest is not None:
            _check_hash(digest, _sha256_at(folder_fd, partial),
                        f'The download of {shown}')

    # Relative to the key folder's descriptor: nothing is written through
    # a link planted at the folder's path meanwhile.
    with atomic_write(name, dir_fd=folder_fd, check=check) as out:
        expected, size = _copy_body(url, shown, path, out, limits)
        if expected is not None and size != expected:
            raise DownloadError(
                f'The download of {shown} stopped after {size} of {expected} '
                'bytes (the server closed the connection); nothing was kept '
                f'in the cache file {path}. Run again to download it again.')


class _Redirects(HTTPRedirectHandler):
    """Follows redirects to http(s) only; credentials stay on their host."""

    def http_error_302(self, req, fp, code, msg, headers):
        target = headers.get('Location') or headers.get('URI')
        if target is not None:
            target = urljoin(req.full_url, target)
            if urlsplit(target).scheme not in ('http', 'https'):
                raise _Refused(
                    f'the server redirected it to {redact_url(target)}, '
                    'which is no http(s) URL (refused)')
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_302
    http_error_308 = http_error_302

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urlsplit(newurl).netloc != urlsplit(
                req.full_url).netloc:
            new.remove_header('Authorization')
        return new


class _Refused(Exception):
    """A redirect refused before it was followed."""


class _Deadline:
    """Closes the download's connections when the deadline passes.

    The stall limit bounds each read, not their number: a server that
    sends its headers or body a byte at a time would never reach the
    checks between reads. Every connection the download opens (redirects
    included) is shut down when the deadline passes, which ends any read.
    """

    def __init__(self, seconds: float) -> None:
        self.passed = False
        self._sockets: list = []
        self._lock = threading.Lock()
        self._timer = None
        if seconds:
            self._timer = threading.Timer(seconds, self._pass)
            self._timer.daemon = True
            self._timer.start()

    def watch(self, sock) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.passed:
                _shut(sock)

    def _pass(self) -> None:
        with self._lock:
            self.passed = True
            for sock in self._sockets:
                _shut(sock)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def _shut(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # closed already


def _watched_handlers(deadline: _Deadline) -> list:
    """urllib's http(s) handlers, their connections watched by
    ``deadline``."""

    def watched(connection_class: type) -> type:

        class Watched(connection_class):

            def connect(self):
                super().connect()
                deadline.watch(self.sock)

        return Watched

    class Watching:

        def do_open(self, http_class, req, **kwargs):
            return super().do_open(watched(http_class), req, **kwargs)

    return [
        type(f'Watched{handler.__name__}', (Watching, handler), {})()
        for handler in (HTTPHandler, HTTPSHandler)
    ]


def _request(url: str) -> Request:
    parts = urlsplit(url)
    headers = {'Accept-Encoding': 'identity'}
    if '@' in parts.netloc:
        # urllib sends no user-info itself: as HTTP basic auth it works.
        userinfo, _, host = parts.netloc.rpartition('@')
        user, _, password = userinfo.partition(':')
        token = f'{unquote(user)}:{unquote(password)}'.encode()
        headers['Authorization'] = 'Basic ' + base64.b64encode(token).decode()
        url = urlunsplit(parts._replace(netloc=host))
    return Request(url, headers=headers)


def _copy_body(url: str, shown: str, path: str, out,
               limits: DownloadLimits) -> Tuple[Optional[int], int]:
    """Write the decoded body of ``url`` to ``out`` within ``limits``.

    Returns:
        The Content-Length (None without one) and the bytes received.
    """

    def fail(what: str, fix: str) -> DownloadError:
        return DownloadError(
            f'Could not download {shown} into the cache file {path}: {what}. '
            f'Nothing was kept. {fix} {_MOVE_HINT}')

    start = time.monotonic()
    deadline = _Deadline(limits.deadline)
    try:
        return _copy_within(url, shown, path, out, limits, fail, start,
                            deadline)
    finally:
        deadline.cancel()


def _copy_within(url: str, shown: str, path: str, out, limits: DownloadLimits,
                 fail: Callable, start: float,
                 deadline: _Deadline) -> Tuple[Optional[int], int]:
    size, expected = 0, None

    def late(phase: str = '') -> DownloadError:
        return fail(
            f'it did not finish within {limits.deadline:g} s '
            f'({DEADLINE_ENV}){phase}: {size} of {_size(expected)} arrived',
            f'Set {DEADLINE_ENV} (seconds) to allow more, or '
            'download the file yourself and give its local path.')

    try:
        resp = build_opener(_Redirects, *_watched_handlers(deadline)).open(
            _request(url), timeout=limits.stall)
    except HTTPError as err:
        where = '' if redact_url(err.url) == shown else \
            f' (redirected to {redact_url(err.url)})'
        fix = 'Check the URL.'
        if err.code in (401, 403) and not has_secret(url):
            fix += (' URLs are recorded without user-info and query '
                    'string: if it needs a token, give the full URL again.')
        raise fail(f'the server answered {err.code} {err.reason}{where}',
                   fix) from None
    except _Refused as err:
        raise fail(str(err), 'Check the URL.') from None
    except (URLError, OSError, http.client.HTTPException) as err:
        if deadline.passed:
            raise late(' while the server was still sending its headers') \
                from None
        reason = getattr(err, 'reason', err)
        if isinstance(reason, TimeoutError) or isinstance(err, TimeoutError):
            raise fail(
                f'the server did not answer within {limits.stall:g} s',
                f'Check the URL, or set {STALL_ENV} (seconds) to wait '
                'longer.') from None
        raise fail(f'the connection failed ({reason})',
                   'Check the URL and the network.') from None
    with resp:
        decode = _Decoder(resp.headers.get('Content-Encoding'), fail)
        length = resp.headers.get('Content-Length')
        expected = int(length) if length and length.isdigit() else None
        print_log(
            f'Downloading {shown} ({_size(expected)}) into {path}',
            logger='current')
        mark_size = 0
        mark = last_report = start
        while True:
            try:
                chunk = resp.read1(CHUNK)
            except TimeoutError:
                if deadline.passed:
                    raise late() from None
                raise fail(
                    f'the server sent nothing for {limits.stall:g} s after '
                    f'{size} of {_size(expected)} (stalled)',
                    f'Run again later, or set {STALL_ENV} (seconds) to wait '
                    'longer.') from None
            except (OSError, http.client.HTTPException) as err:
                if deadline.passed:
                    raise late() from None
                raise fail(
                    f'the connection failed after {size} of '
                    f'{_size(expected)} ({type(err).__name__}: {err})',
                    'Run again to download it again.') from None
            if not chunk:
                break
            size += len(chunk)
            out.write(decode(chunk))
            if expected is not None and size >= expected:
                continue  # all there: no limit applies to the last read
            now = time.monotonic()
            if limits.deadline and now - start > limits.deadline:
                raise late()
            if limits.min_rate and now - mark >= limits.rate_window:
                rate = (size - mark_size) / (now - mark)
                if rate < limits.min_rate:
                    raise fail(
                        f'it ran at {rate:.0f} bytes/s for {now - mark:.1f} '
                        f's, under {MIN_RATE_ENV}={limits.min_rate:g} '
                        f'bytes/s ({RATE_WINDOW_ENV}='
                        f'{limits.rate_window:g} s); {size} of '
                        f'{_size(expected)} arrived',
                        f'Run again later, or lower {MIN_RATE_ENV} (0 '
                        'switches the rule off).')
                mark, mark_size = now, size
            if limits.progress and now - last_report >= limits.progress:
                last_report = now
                print_log(
                    _progress(shown, size, expected, now - start),
                    logger='current')
        # The watchdog's shutdown ends a body without Content-Length as
        # the server's close would: it is late, not complete.
        if deadline.passed and (expected is None or size < expected):
            raise late()
        out.write(decode.finish())
    print_log(
        f'Downloaded {shown}: {_size(size)} in '
        f'{time.monotonic() - start:.1f} s.',
        logger='current')
    return expected, size


class _Decoder:
    """Undoes the body's Content-Encoding: none, gzip or deflate."""

    def __init__(self, encoding: Optional[str], fail: Callable) -> None:
        self.encoding = (encoding or 'identity').strip().lower()
        self.fail = fail
        self.zlib = None
        if self.encoding in ('gzip', 'x-gzip'):
            self.wbits = 16 + zlib.MAX_WBITS
        elif self.encoding == 'deflate':
            self.wbits = None  # zlib-wrapped or raw: seen in the first bytes
        elif self.encoding != 'identity':
            raise fail(
                f'the server sent it with Content-Encoding '
                f'{encoding.strip()!r}, which is not decoded here (gzip and '
                'deflate are)', 'Serve the file without that encoding, or '
                'download it yourself and give its local path.')

    def __call__(self, chunk: bytes) -> bytes:
        if self.encoding == 'identity':
            return chunk
        if self.zlib is None:
            wbits = self.wbits
            if wbits is None:  # RFC 1950 header, else raw RFC 1951
                wbits = zlib.MAX_WBITS if len(chunk) > 1 and (
                    chunk[0] & 0x0F == 8) and (
                        (chunk[0] << 8) | chunk[1]) % 31 == 0 else -15
            self.zlib = zlib.decompressobj(wbits)
        try:
            return self.zlib.decompress(chunk)
        except zlib.error as err:
            raise self.fail(
                f'its {self.encoding} body does not decode ({err})',
                'Run again; if it fails again, the server sends a damaged '
                'body.') from None

    def finish(self) -> bytes:
        if self.encoding == 'identity':
            return b''
        if self.zlib is None or not self.zlib.eof:
            raise self.fail(
                f'its {self.encoding} body ended before its end marker '
                '(truncated)', 'Run again to download it again.')
        return self.zlib.flush()


def _size(count: Optional[int]) -> str:
    if count is None:
        return 'size unknown'
    if count < 1 << 20:
        return f'{count} bytes'
    return f'{count / (1 << 20):.1f} MiB'


def _progress(shown: str, size: int, expected: Optional[int],
              elapsed: float) -> str:
    rate = size / elapsed if elapsed > 0 else 0.
    text = f'Downloading {shown}: {_size(size)}'
    if expected:
        text += f' of {_size(expected)} ({100. * size / expected:.0f}%)'
    text += f', {_size(int(rate))}/s'
    if expected and rate > 0:
        text += f', about {(expected - size) / rate / 60:.0f} min left'
    return text
