"""Files that appear complete or not at all.

A checkpoint written in place by a process that is killed, or that fills
the disk, is left half written under its final name: the next load fails
(or, worse, a resume picks it as the latest). :func:`atomic_write` writes
to a temporary file beside the target (same folder, so the rename cannot
cross file systems), syncs it to disk, renames it over the target and
syncs the folder, so the new name survives a power loss too. On any error
the temporary file is removed and the target keeps what it had.

Temporary files are named ``<target>.<random>.partial``; a writer killed
with SIGKILL cannot remove its own, :func:`remove_stale_temps` does.
"""
import errno
import os
import os.path as osp
import secrets
import stat
import time
from contextlib import contextmanager
from typing import BinaryIO, Callable, Iterator, List, Optional, Union

TEMP_SUFFIX = '.partial'
# Called with the temporary file's name before the rename; raises to abort.
Check = Callable[[str], None]
# A new file only, never through a link planted at its name.
_CREATE_NEW = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    | os.O_CLOEXEC)


def temp_name(name: str) -> str:
    """A fresh temporary name for the target file ``name``."""
    return f'{name}.{secrets.token_hex(4)}{TEMP_SUFFIX}'


def is_temp_of(entry: str, name: Optional[str] = None) -> bool:
    """Whether ``entry`` is a temporary file of :func:`atomic_write` (of
    the target ``name``, or of any target)."""
    if not entry.endswith(TEMP_SUFFIX):
        return False
    return name is None or (entry.startswith(name + '.')
                            and len(entry) > len(name) + len(TEMP_SUFFIX) + 1)


@contextmanager
def atomic_write(path: str,
                 dir_fd: Optional[int] = None,
                 check: Optional[Check] = None) -> Iterator[BinaryIO]:
    """Write ``path`` through a temporary file, renamed over it at the end.

    The temporary file gets the permissions ``open`` would give a new file
    (``0666`` minus the umask), not ``mkstemp``'s private ``0600``: a shared
    cache or work dir stays readable to the team. It is created with
    ``O_EXCL | O_NOFOLLOW``, so nothing planted at its name is followed.

    Args:
        path: The target. With ``dir_fd``, a bare file name in the folder
            that descriptor opens (a caller that must not follow a
            symbolic link in the folder's path holds the folder open).
        dir_fd: An open descriptor of the target's folder; None to open the
            folder of ``path``.
        check: Called with the temporary file's name (in the target's
            folder) once it is written and synced, before the rename; what
            it raises aborts the write (e.g. a download of the wrong size).

    Yields:
        The temporary file, open for binary writing.

    Raises:
        ValueError: ``dir_fd`` is given and ``path`` is not a bare name.
    """
    if dir_fd is None:
        folder, name = osp.split(osp.abspath(path))
        folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    elif osp.basename(path) != path or path in ('', '.', '..'):
        raise ValueError('`path` should be a file name in the folder of '
                         f'`dir_fd`, but got {path!r}; pass the name alone.')
    else:
        folder_fd, name = dir_fd, path
    temp = temp_name(name)
    renamed = False
    try:
        # O_CREAT applies the umask to 0o666, as open() does.
        fd = os.open(temp, _CREATE_NEW, 0o666, dir_fd=folder_fd)
        try:
            with os.fdopen(fd, 'wb') as file:
                yield file
                file.flush()
                os.fsync(file.fileno())
            if check is not None:
                check(temp)
            os.replace(temp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
            renamed = True
            _sync_folder(folder_fd)
        finally:
            if not renamed:
                _remove(temp, folder_fd)
    finally:
        if dir_fd is None:
            os.close(folder_fd)


def _sync_folder(folder_fd: int) -> None:
    # Makes the rename itself durable. Some file systems (several network
    # ones) refuse fsync on a folder; the rename has happened regardless.
    try:
        os.fsync(folder_fd)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise


def _remove(name: str, folder_fd: int) -> None:
    try:
        os.unlink(name, dir_fd=folder_fd)
    except FileNotFoundError:
        pass


def remove_stale_temps(folder: Union[str, int],
                       name: Optional[str] = None,
                       older_than: float = 0.) -> List[str]:
    """Remove the temporary files killed writers left in ``folder``.

    Args:
        folder: A folder's path or an open descriptor of it (entries are
            then removed relative to it, never through a link).
        name: Only the temporary files of this target; None for all.
        older_than: Seconds since a file was last written: younger ones
            may belong to a live writer and are kept. 0 removes them all
            (for a target only one process writes at a time).

    Returns:
        The names removed.
    """
    folder_fd = folder if isinstance(folder, int) else os.open(
        folder, os.O_RDONLY | os.O_DIRECTORY)
    removed = []
    now = time.time()
    try:
        for entry in os.listdir(folder_fd):
            if not is_temp_of(entry, name):
                continue
            try:
                info = os.stat(entry, dir_fd=folder_fd, follow_symlinks=False)
                if not stat.S_ISDIR(info.st_mode) and \
                        now - info.st_mtime >= older_than:
                    os.unlink(entry, dir_fd=folder_fd)
                    removed.append(entry)
            except OSError:
                pass  # another process removed or renamed it meanwhile
    finally:
        if not isinstance(folder, int):
            os.close(folder_fd)
    return removed
