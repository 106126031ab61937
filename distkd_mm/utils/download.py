"""A download cache for checkpoints that cannot be poisoned or confused.

Rules (each one fixes a way a multi-day run lost or mixed up its teacher):

- The cache key is the whole URL: a file lives in
  ``<torch hub>/checkpoints/<sha256(url)[:16]>/<file name>``, so two URLs that
  share a file name never share a file, and the name stays readable.
- A download is written to ``*.partial`` and renamed to its final name only
  when it is complete: as long as ``Content-Length`` says, or, without that
  header, when it opens as a checkpoint. Partial files older than
  :data:`STALE_PARTIAL_S` (left by a killed process) are removed.
- A name that carries a torch hub / OpenMMLab hash (``name-1a2b3c4d.pth``:
  8 to 64 hex digits, at least one of them a letter, so dates and step
  counts such as ``teacher-20240101.pth`` are not hashes) pins the content:
  it is checked after the download and again on every load. Set
  ``DISTKD_MM_HASH_CHECK=0`` to switch the check off.
- Files get the permissions torch hub's would (``0666`` minus the umask), so a
  shared cache stays readable to the team.
- In a distributed run the first process of each node downloads while the
  others wait at a barrier, then read the same file.
"""
import hashlib
import os
import os.path as osp
import re
import tempfile
import time
from typing import Callable, Optional
from urllib.error import HTTPError
from urllib.request import urlopen

import torch
from mmengine.logging import MMLogger

# A torch hub / OpenMMLab hash: '-' then 8-64 hex digits, one a letter.
_HASH_IN_NAME = re.compile(r'-((?=[0-9]*[a-f])[a-f0-9]{8,64})\.[A-Za-z]+$')
HASH_CHECK_ENV = 'DISTKD_MM_HASH_CHECK'
# A partial file not written to for this long belongs to a dead process.
STALE_PARTIAL_S = 3600


def cache_dir() -> str:
    """Where downloaded checkpoints live: torch hub's checkpoint folder."""
    return osp.join(torch.hub.get_dir(), 'checkpoints')


def url_file_name(url: str) -> str:
    """The readable file name of ``url`` (query string removed)."""
    return osp.basename(url.split('?')[0].split('#')[0]) or 'download'


def cached_path(url: str, directory: Optional[str] = None) -> str:
    """The cache file of ``url``: keyed by the whole URL, readable name."""
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    return osp.join(directory or cache_dir(), key, url_file_name(url))


def name_hash(name: str) -> Optional[str]:
    """The hash prefix a file name pins, or None (also when switched off)."""
    if os.environ.get(HASH_CHECK_ENV, '1').lower() in ('0', 'false', 'no'):
        return None
    match = _HASH_IN_NAME.search(name)
    return match.group(1) if match else None


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


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
    if expected is None:
        return
    actual = sha256_of(path)
    if not actual.startswith(expected):
        raise RuntimeError(
            f'{source or path} has sha256 {actual}, but its name says it '
            f'should start with {expected!r}: the file is corrupt or was '
            f'replaced. Nothing was loaded. Download it again, or set '
            f'{HASH_CHECK_ENV}=0 if the name only looks like a hash.')


def download_once(url: str,
                  directory: Optional[str] = None,
                  check_complete: Optional[Callable[[str], None]] = None,
                  timeout: float = 60) -> str:
    """Return the cached file of ``url``, downloading it if needed.

    Args:
        url: An ``http(s)://`` URL.
        directory: The cache root; torch hub's checkpoint folder by default.
        check_complete: Raises when a body that came without
            ``Content-Length`` is not a complete checkpoint.
        timeout: Seconds to wait for the server.

    Returns:
        The path of the complete, verified file.
    """
    path = cached_path(url, directory)
    rank, world, local_rank = _dist_ranks()
    if world == 1:
        return _fetch(url, path, check_complete, timeout)
    # Every rank reaches the barrier (even when its node has the file), so
    # no rank waits forever; the node's first process downloads.
    error = None
    if local_rank == 0:
        try:
            _fetch(url, path, check_complete, timeout)
        except Exception as err:  # re-raised after the barrier
            error = err
    torch.distributed.barrier()
    if error is not None:
        raise error
    return _fetch(url, path, check_complete, timeout)


def _dist_ranks() -> tuple:
    if not (torch.distributed.is_available()
            and torch.distributed.is_initialized()):
        return 0, 1, 0
    rank = torch.distributed.get_rank()
    local = int(os.environ.get('LOCAL_RANK', rank))
    return rank, torch.distributed.get_world_size(), local


def _fetch(url: str, path: str, check_complete: Optional[Callable],
           timeout: float) -> str:
    directory = osp.dirname(path)
    os.makedirs(directory, exist_ok=True)
    remove_stale_partials(directory)
    legacy = _torch_hub_copy(path)
    if legacy is not None:
        return legacy
    if osp.exists(path):
        try:
            verify_name_hash(path, f'The cached file {path!r} of {url}')
            return path
        except RuntimeError as err:
            # MMEngine's logger: the notice reaches the work dir's log file.
            MMLogger.get_current_instance().warning(
                f'{err} Downloading it again.')
            os.remove(path)
    fd, partial = tempfile.mkstemp(
        prefix=osp.basename(path) + '.', suffix='.partial', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as out:
            expected, size = _copy_body(url, out, timeout)
        if expected is not None and size != expected:
            raise RuntimeError(
                f'The download of {url} stopped after {size} of {expected} '
                'bytes (the server closed the connection); nothing was kept. '
                'Run again to download it again.')
        if expected is None and check_complete is not None:
            check_complete(partial)
        verify_name_hash(partial, f'The download of {url}', osp.basename(path))
        os.chmod(partial, 0o666 & ~_umask())
        os.replace(partial, path)
    finally:
        if osp.exists(partial):
            os.remove(partial)
    return path


def _torch_hub_copy(path: str) -> Optional[str]:
    """A hash-named file torch hub already cached under its bare name.

    Its hash pins the content, so it is the same file whatever URL it came
    from; an unnamed or mismatching one is ignored.
    """
    name = osp.basename(path)
    legacy = osp.join(osp.dirname(osp.dirname(path)), name)
    if osp.exists(path) or name_hash(name) is None or not osp.isfile(legacy):
        return None
    try:
        verify_name_hash(legacy)
    except RuntimeError:
        return None
    return legacy


def _copy_body(url: str, out, timeout: float) -> tuple:
    try:
        resp = urlopen(url, timeout=timeout)
    except HTTPError as err:
        raise RuntimeError(
            f'Could not download {url}: the server answered {err.code} '
            f'{err.reason}. Check the URL; nothing was kept.') from None
    with resp:
        length = resp.headers.get('Content-Length')
        size = 0
        for chunk in iter(lambda: resp.read(1 << 20), b''):
            out.write(chunk)
            size += len(chunk)
    out.flush()
    os.fsync(out.fileno())
    return (int(length) if length is not None else None), size


def remove_stale_partials(directory: str) -> None:
    """Remove ``*.partial`` files that no process wrote to for an hour."""
    now = time.time()
    for name in os.listdir(directory):
        full = osp.join(directory, name)
        if not name.endswith('.partial'):
            continue
        try:
            if now - os.path.getmtime(full) > STALE_PARTIAL_S:
                os.remove(full)
        except OSError:
            pass  # another process removed or renamed it meanwhile


def _umask() -> int:
    # os.umask can only be read by setting it; restore it at once.
    mask = os.umask(0)
    os.umask(mask)
    return mask
