"""One live training run per work dir.

Two runs in one work dir (a scheduler's requeue while the old job still
runs, a copied command) both exit 0, interleave their scalars and overwrite
each other's checkpoints. ``tools/train.py`` therefore holds
``<work_dir>/train.lock`` for the whole run, taken before anything is built
(no Runner, no dataset, no log folder):

- The lock is created atomically and complete (the record is written to
  a new file of this start's, ``O_CREAT | O_EXCL``, then hard-linked to
  the lock's name, which fails when it exists): of two starts at the same
  instant exactly one wins, and no start reads a half-written lock. It
  holds JSON: pid, host, start time, the program's name (not the command
  line, which may hold a signed URL's token), the machine's boot id and
  the process's start time, and the slurm job id and restart count.
- Only the run's rank 0 takes it (``RANK`` under torchrun, ``SLURM_PROCID``
  under slurm, ``OMPI_COMM_WORLD_RANK`` under mpi); the other ranks follow
  rank 0, and the launcher stops them when rank 0 is refused.
- It is removed when the run ends, normally or by an exception. A SIGKILL
  (or a SIGTERM, which Python does not turn into an exception) leaves it;
  the next start then decides whether its holder is gone:

  * Same host: gone when the pid is not alive, or is alive but is another
    process (its start time differs: the pid was reused), or the machine
    has rebooted since (another boot id). A requeue on the same node starts.
  * Another host: its pid cannot be checked from here. While it runs, the
    holder refreshes the lock's modification time every
    ``stale_after / 10`` seconds; a lock not refreshed for ``stale_after``
    seconds (:data:`STALE_ENV`, default 600) is gone. A requeue of the same
    slurm job (same ``SLURM_JOB_ID``, higher ``SLURM_RESTART_COUNT``) is
    gone at once: slurm ends a job's run before it requeues it.

  A lock whose holder is gone is taken over with a warning; otherwise the
  start is refused with an error naming the holder and what to do.
"""
import datetime
import json
import logging
import os
import os.path as osp
import socket
import sys
import threading
import time
import uuid
from typing import Optional

from mmengine.logging import print_log

LOCK_NAME = 'train.lock'
STALE_ENV = 'DISTKD_LOCK_STALE_AFTER'
DEFAULT_STALE_AFTER = 600.0

# The launchers' global-rank variables, most specific first (LOCAL_RANK is
# per node: on two nodes two processes have LOCAL_RANK 0).
_RANK_ENV = {
    'pytorch': ('RANK', ),
    'slurm': ('SLURM_PROCID', 'RANK'),
    'mpi': ('OMPI_COMM_WORLD_RANK', 'PMI_RANK', 'RANK'),
}


def launcher_rank(launcher: str = 'none') -> int:
    """This process's global rank before MMEngine sets up distribution.

    Args:
        launcher: The run's ``--launcher``. With ``'none'`` the process is a
            run of its own (rank 0) whatever the environment holds.

    Returns:
        The rank the launcher gave this process, 0 when it gave none.
    """
    for name in _RANK_ENV.get(launcher, ()):
        value = os.environ.get(name)
        if value not in (None, ''):
            try:
                return int(value)
            except ValueError:
                raise ValueError(
                    f'`{name}` should be an integer rank (the launcher '
                    f'sets it), but got {value!r}; unset it or launch with '
                    'torchrun or srun.') from None
    return 0


def stale_after() -> float:
    """Seconds without a refresh after which another host's lock is gone."""
    value = os.environ.get(STALE_ENV, '')
    if not value:
        return DEFAULT_STALE_AFTER
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f'`{STALE_ENV}` should be a positive number of '
                         f'seconds, but got {value!r}; unset it for the '
                         f'default ({DEFAULT_STALE_AFTER:.0f}).')
    return seconds


def _boot_id() -> Optional[str]:
    try:
        with open('/proc/sys/kernel/random/boot_id') as f:
            return f.read().strip()
    except OSError:
        return None


def _process_start(pid: int) -> Optional[str]:
    # Field 22 of /proc/<pid>/stat: start time in clock ticks since boot.
    # The command name (field 2) may hold spaces, so split after its `)`.
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rpartition(')')[2].split()[19]
    except (OSError, IndexError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError:
        return False
    return True


def _read(path: str) -> Optional[dict]:
    """The lock's record, with its modification time as ``_mtime``; None
    when it is missing (taken away meanwhile).

    Both come from one open file: a record judged by the age of a newer
    file at the same name would be judged wrong.
    """
    try:
        with open(path) as f:
            text = f.read()
            mtime = os.fstat(f.fileno()).st_mtime
    except FileNotFoundError:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    # A lock cut short (created without hard links by a start killed
    # before it wrote) holds no record: judged by its age alone.
    record = record if isinstance(record, dict) else {}
    record['_mtime'] = mtime
    return record


# Seconds a start waits for another start's takeover (a few file operations
# long) before it treats the takeover file as left by a dead start.
TAKEOVER_WAIT = 10.0


def _write_new(path: str, text: str) -> None:
    """Write a file that must not exist yet (``FileExistsError`` if so)."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    with os.fdopen(fd, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _wait_for_removal(path: str) -> None:
    deadline = time.monotonic() + TAKEOVER_WAIT
    while osp.exists(path):
        if time.monotonic() > deadline:
            try:
                if time.time() - os.stat(path).st_mtime > TAKEOVER_WAIT:
                    os.unlink(path)
            except FileNotFoundError:
                pass
            return
        time.sleep(0.02)


class WorkDirLock:
    """The lock of one work dir, held by this run; a context manager.

    Args:
        work_dir: The run's work dir (created when missing).
        launcher: The run's ``--launcher``: only rank 0 takes the lock.
        stale_seconds: See :data:`STALE_ENV`; None reads the variable.

    Raises:
        RuntimeError: On entering, when a live run holds the lock.
    """

    def __init__(self,
                 work_dir: str,
                 launcher: str = 'none',
                 stale_seconds: Optional[float] = None):
        self.work_dir = osp.abspath(work_dir)
        self.path = osp.join(self.work_dir, LOCK_NAME)
        self.launcher = launcher
        self.stale_seconds = stale_seconds
        self.held = False
        self._token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._heartbeat: Optional[threading.Thread] = None

    def __enter__(self) -> 'WorkDirLock':
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _record(self, took_over: Optional[dict]) -> dict:
        record = dict(
            pid=os.getpid(),
            host=socket.gethostname(),
            started=datetime.datetime.now().astimezone().isoformat(
                timespec='seconds'),
            # Not the command line: it may hold a signed URL's token.
            program=osp.basename(sys.argv[0]) if sys.argv else None,
            boot_id=_boot_id(),
            process_start=_process_start(os.getpid()),
            slurm_job_id=os.environ.get('SLURM_JOB_ID'),
            slurm_restart_count=os.environ.get('SLURM_RESTART_COUNT'),
            token=self._token)
        if took_over is not None:
            record['took_over'] = took_over
        return record

    def acquire(self) -> bool:
        """Take the lock (rank 0 only).

        Returns:
            Whether this process holds it now (False on other ranks).
        """
        if launcher_rank(self.launcher) != 0:
            return False
        stale = self.stale_seconds or stale_after()
        os.makedirs(self.work_dir, exist_ok=True)
        took_over = None
        # A round creates the lock, refuses, or (holding the takeover file)
        # removes a gone holder's lock; another round only follows when a
        # racing start changed the lock meanwhile.
        for _ in range(20):
            if self._create(took_over):
                self.held = True
                self._start_heartbeat(stale)
                if took_over is not None:
                    print_log(
                        f'Took over {self.path}: its run '
                        f'{self._describe(took_over)} is gone '
                        f'({took_over["_why"]}).',
                        logger='current',
                        level=logging.WARNING)
                return True
            record = _read(self.path)
            if record is None:
                continue  # removed since: try again
            why = self._gone(record, stale)
            if why is None:
                raise RuntimeError(self._refusal(record, stale))
            if self._remove_gone(record):
                took_over = dict(record, _why=why)
                took_over.pop('_mtime')
        raise RuntimeError(
            f'`work_dir` {self.work_dir} should be free to lock, but other '
            f'starts kept taking {self.path}; start one run at a time.')

    def _create(self, took_over: Optional[dict]) -> bool:
        """Create the lock, complete, unless it exists.

        The record goes to a file of this start's own first (``O_CREAT |
        O_EXCL``), which is then hard-linked to the lock's name: the link
        fails when the name exists (of two starts one wins) and a reader
        never sees a lock half written. Where the file system has no hard
        links, the lock itself is created with ``O_CREAT | O_EXCL``.
        """
        text = json.dumps(self._record(took_over), indent=1)
        own = f'{self.path}.{self._token}'
        _write_new(own, text)
        try:
            os.link(own, self.path)
            return True
        except FileExistsError:
            return False
        except OSError:
            try:
                _write_new(self.path, text)
            except FileExistsError:
                return False
            return True
        finally:
            os.unlink(own)

    def _remove_gone(self, record: dict) -> bool:
        """Remove a gone holder's lock; False when it changed meanwhile.

        Starts that take over are serialised by ``<lock>.takeover``
        (``O_CREAT | O_EXCL``): the one holding it checks that the lock is
        still the one judged gone and removes it; the others wait for it
        and look again. A takeover file left by a start that died in these
        few lines is removed once it is :data:`TAKEOVER_WAIT` seconds old.
        """
        takeover = f'{self.path}.takeover'
        try:
            _write_new(takeover, self._token)
        except FileExistsError:
            _wait_for_removal(takeover)
            return False
        try:
            if _read(self.path) != record:
                return False
            os.unlink(self.path)
            return True
        finally:
            os.unlink(takeover)

    def _gone(self, record: dict, stale: float) -> Optional[str]:
        """Why the lock's holder is gone, or None while it may live."""
        age = time.time() - record['_mtime']
        if 'pid' not in record:
            return (f'an empty lock, not refreshed for {age:.0f} s'
                    if age > stale else None)
        host, pid = record.get('host'), record.get('pid')
        if host == socket.gethostname() and isinstance(pid, int) and pid > 0:
            boot = record.get('boot_id')
            if boot and _boot_id() and boot != _boot_id():
                return 'this host has rebooted since'
            if not _pid_alive(pid):
                return f'pid {pid} is not alive'
            start = record.get('process_start')
            if start and _process_start(pid) not in (None, start):
                return f'pid {pid} is now another process'
            return None
        job = os.environ.get('SLURM_JOB_ID')
        if job and record.get('slurm_job_id') == job:
            try:
                earlier = int(record.get('slurm_restart_count') or 0) < int(
                    os.environ.get('SLURM_RESTART_COUNT') or 0)
            except ValueError:
                earlier = False
            if earlier:
                return f'slurm requeued job {job} since'
        if age > stale:
            return f'its lock was not refreshed for {age:.0f} s'
        return None

    @staticmethod
    def _describe(record: dict) -> str:
        if 'pid' not in record:
            return 'of a start that never wrote its record (an empty lock)'
        return (f"pid {record.get('pid')} on host {record.get('host')}, "
                f"started {record.get('started')}")

    def _refusal(self, record: dict, stale: float) -> str:
        message = (f'`work_dir` should be used by one live run at a time, '
                   f'but {self.work_dir} is in use by the run '
                   f'{self._describe(record)} (lock file {self.path}). ')
        if record.get('host') == socket.gethostname():
            return message + (
                'Give this run another --work-dir, or stop the first run '
                f"(kill {record.get('pid')}) and start again (with --resume "
                'to continue from its last checkpoint).')
        age = time.time() - record['_mtime']
        where = ('Its host is not this one, so its process cannot be '
                 'checked' if 'pid' in record else 'It holds no record')
        return message + (
            f'{where}: the lock was last refreshed {age:.0f} s ago and '
            f'counts as live until it is {stale:.0f} s without a refresh '
            f'({STALE_ENV}). Give this run another --work-dir, or stop the '
            'first run; if you know it is gone (its host failed), delete '
            f'{self.path} and start again.')

    def _start_heartbeat(self, stale: float) -> None:
        # Another host judges the lock by its modification time; refreshed
        # well within `stale` so that a slow file system never lets a live
        # run's lock look gone.
        def beat():
            while not self._stop.wait(stale / 10):
                if not self._ours():
                    print_log(
                        f'{self.path} is no longer this run\'s lock (removed '
                        'or taken over by another start): two runs may now '
                        'share the work dir.',
                        logger='current',
                        level=logging.WARNING)
                    return
                try:
                    os.utime(self.path)
                except OSError:
                    pass

        self._heartbeat = threading.Thread(
            target=beat, name='work-dir-lock', daemon=True)
        self._heartbeat.start()

    def _ours(self) -> bool:
        record = _read(self.path)
        return record is not None and record.get('token') == self._token

    def release(self) -> None:
        """Stop refreshing and remove the lock, if this run still holds it.

        A lock another start took over stays: it is that run's.
        """
        if not self.held:
            return
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        self.held = False
        if self._ours():
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass  # removed meanwhile; never mask the run's own error


def work_dir_lock(work_dir: str, launcher: str = 'none') -> WorkDirLock:
    """The lock :mod:`tools/train.py` holds for a run (see the module)."""
    return WorkDirLock(work_dir, launcher)
