"""One live run per work dir: tools/train.py holds <work_dir>/train.lock.

The command-line cases run the real tools/train.py in fresh processes; the
rules for locks of other hosts, slurm requeues, ranks and racing starts
run :class:`WorkDirLock` itself on lock files written as another host or
job would have written them.
"""
import json
import os
import os.path as osp
import re
import socket
import threading
import time

import pytest
from distkd_testing import cli, cli_start, tiny_classifier, write_config

from distkd_mm.apis.work_dir_lock import LOCK_NAME, STALE_ENV, WorkDirLock

# Holds the run in `before_train` (after the lock and the log folder exist)
# until the test creates the `go` file: the first run is alive for as long
# as the test needs, whatever the machine's speed.
HOLD_HOOK = '''
import os
import time
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class HoldUntilGoHook(Hook):

    def __init__(self, ready, go):
        self.ready, self.go = ready, go

    def before_train(self, runner):
        open(self.ready, 'w').close()
        deadline = time.monotonic() + 300  # the test died: end anyway
        while not os.path.exists(self.go):
            if time.monotonic() > deadline:
                raise RuntimeError('the test never let this run go on')
            time.sleep(0.05)
'''


def log_folders(work_dir) -> list:
    """The Runner's timestamped log folders in a work dir."""
    return sorted(
        name for name in os.listdir(work_dir)
        if osp.isdir(osp.join(work_dir, name)))


def wait_for(path, process) -> None:
    """Until ``path`` exists; fail with the process's output if it ends."""
    deadline = time.monotonic() + 240
    while not osp.exists(path):
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f'the first run ended early:\n{out[-2000:]}'
                        f'{err[-3000:]}')
        assert time.monotonic() < deadline, f'{path} never appeared'
        time.sleep(0.05)


@pytest.mark.slow
def test_second_run_in_a_live_work_dir_is_refused_and_the_first_finishes(
        imagenet_root, tmp_path):
    (tmp_path / 'hold_hook.py').write_text(HOLD_HOOK)
    work = tmp_path / 'work'
    ready, go = tmp_path / 'ready', tmp_path / 'go'
    config = write_config(
        tmp_path / 'plain.py',
        imagenet_root,
        str(work),
        tiny_classifier(4),
        1,
        custom_imports=dict(imports=['hold_hook'], allow_failed_imports=False),
        custom_hooks=[
            dict(type='HoldUntilGoHook', ready=str(ready), go=str(go))
        ])
    first = cli_start(['tools/train.py', config], tmp_path)
    try:
        wait_for(ready, first)
        lock = work / LOCK_NAME
        assert json.loads(lock.read_text())['pid'] == first.pid
        folders = log_folders(work)
        assert len(folders) == 1  # the first run's

        second = cli(['tools/train.py', config], tmp_path)
        assert second.returncode != 0
        error = second.stderr.strip().splitlines()[-1]
        assert error.startswith('RuntimeError: `work_dir` should be used by '
                                'one live run at a time')
        assert f'pid {first.pid} on host {socket.gethostname()}' in error
        assert f'lock file {lock}' in error
        assert 'another --work-dir' in error and f'kill {first.pid}' in error
        # Refused before it built anything: no second log folder, and the
        # first run's lock is untouched.
        assert log_folders(work) == folders
        assert json.loads(lock.read_text())['pid'] == first.pid
    finally:
        go.touch()
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-3000:]
    assert (work / 'epoch_1.pth').is_file()
    assert not (work / LOCK_NAME).exists()  # released at the end


@pytest.mark.slow
def test_lock_of_a_process_that_is_gone_is_taken_over_and_the_run_trains(
        imagenet_root, tmp_path):
    work = tmp_path / 'work'
    # A process that takes the lock and dies without a clean-up (as a
    # SIGKILL leaves it): its pid is not alive any more.
    dead = cli([
        '-c', 'import os, sys\n'
        'from distkd_mm.apis.work_dir_lock import WorkDirLock\n'
        'WorkDirLock(sys.argv[1]).acquire()\n'
        'os._exit(0)',
        str(work)
    ], tmp_path)
    assert dead.returncode == 0, dead.stderr
    stale = json.loads((work / LOCK_NAME).read_text())
    config = write_config(tmp_path / 'plain.py', imagenet_root, str(work),
                          tiny_classifier(4), 1)

    run = cli(['tools/train.py', config], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    output = run.stdout + run.stderr
    assert (f"Took over {work / LOCK_NAME}: its run pid {stale['pid']} on "
            f"host {stale['host']}, started {stale['started']} is gone (pid "
            f"{stale['pid']} is not alive)") in output
    assert (work / 'epoch_1.pth').is_file()
    assert not (work / LOCK_NAME).exists()


def write_lock(work_dir, **fields) -> str:
    """A lock file as another run would have left it."""
    os.makedirs(work_dir, exist_ok=True)
    record = dict(
        pid=12345,
        host='another-host',
        started='2026-12-01T08:00:00+00:00',
        token='theirs')
    record.update(fields)
    path = osp.join(work_dir, LOCK_NAME)
    with open(path, 'w') as f:
        json.dump(record, f)
    return path


def test_another_hosts_refreshed_lock_is_honoured_with_how_to_remove_it(
        tmp_path):
    path = write_lock(tmp_path)
    then = time.time() - 100  # refreshed 100 s ago: within the 600 s
    os.utime(path, (then, then))
    with pytest.raises(RuntimeError) as error:
        WorkDirLock(str(tmp_path)).acquire()
    message = str(error.value)
    assert 'pid 12345 on host another-host, started 2026-12-01' in message
    assert re.search(
        'its process cannot be checked: the lock was last '
        r'refreshed 10\d s ago and ', message), message
    assert f'counts as live until it is 600 s without a refresh ' \
           f'({STALE_ENV})' in message
    assert f'delete {path} and start again' in message
    assert json.load(open(path))['token'] == 'theirs'  # left as it was


def test_another_hosts_lock_not_refreshed_for_the_stale_time_is_taken_over(
        tmp_path, monkeypatch):
    path = write_lock(tmp_path)
    monkeypatch.setenv(STALE_ENV, '60')
    then = time.time() - 61
    os.utime(path, (then, then))
    with WorkDirLock(str(tmp_path)) as lock:
        record = json.load(open(path))
        assert record['pid'] == os.getpid() and lock.held
        # The lock says whose it took over.
        assert record['took_over']['host'] == 'another-host'
        assert 'not refreshed for 6' in record['took_over']['_why']
    assert not osp.exists(path)


def test_requeued_slurm_job_takes_over_its_earlier_runs_lock_at_once(
        tmp_path, monkeypatch):
    path = write_lock(tmp_path, slurm_job_id='777', slurm_restart_count='0')
    monkeypatch.setenv('SLURM_JOB_ID', '777')
    monkeypatch.setenv('SLURM_RESTART_COUNT', '1')
    with WorkDirLock(str(tmp_path)):
        assert json.load(open(path))['took_over']['_why'] == \
            'slurm requeued job 777 since'
    # Another job's fresh lock stays honoured.
    write_lock(tmp_path, slurm_job_id='778')
    with pytest.raises(RuntimeError, match='is in use by the run pid 12345'):
        WorkDirLock(str(tmp_path)).acquire()


def test_only_rank_zero_of_a_launched_run_takes_the_lock(
        tmp_path, monkeypatch):
    monkeypatch.setenv('RANK', '1')
    assert not WorkDirLock(str(tmp_path), 'pytorch').acquire()
    monkeypatch.delenv('RANK')
    monkeypatch.setenv('SLURM_PROCID', '3')
    assert not WorkDirLock(str(tmp_path), 'slurm').acquire()
    assert not osp.exists(osp.join(tmp_path, LOCK_NAME))
    # Without a launcher the process is a run of its own, whatever the
    # environment says (two such runs in one work dir collide).
    with WorkDirLock(str(tmp_path), 'none') as lock:
        assert lock.held


def test_starts_racing_for_one_work_dir_let_exactly_one_win(tmp_path):
    for stale in (False, True):
        work = tmp_path / str(stale)
        if stale:  # a gone holder's lock: all of them try to take it over
            path = write_lock(work)
            then = time.time() - 10000
            os.utime(path, (then, then))
        barrier = threading.Barrier(8)
        won, refused = [], []

        def start():
            lock = WorkDirLock(str(work))
            barrier.wait()
            try:
                lock.acquire()
                won.append(lock)
            except RuntimeError as error:
                refused.append(str(error))

        threads = [threading.Thread(target=start) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1 and len(refused) == 7, refused
        # The losers saw the winner's lock (the same pid: threads).
        assert all(f'pid {os.getpid()}' in error for error in refused)
        won[0].release()
        assert os.listdir(work) == []  # no set-aside copies left


def test_lock_is_released_when_the_run_raises(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with WorkDirLock(str(tmp_path)):
            1 / 0
    assert not osp.exists(osp.join(tmp_path, LOCK_NAME))


def test_a_lock_taken_over_from_this_run_is_left_to_its_new_holder(tmp_path):
    lock = WorkDirLock(str(tmp_path))
    lock.acquire()
    os.unlink(lock.path)
    path = write_lock(tmp_path)  # another start's now
    lock.release()
    assert json.load(open(path))['token'] == 'theirs'


def test_a_nonsense_stale_time_is_refused_naming_the_variable(
        tmp_path, monkeypatch):
    monkeypatch.setenv(STALE_ENV, 'ten minutes')
    with pytest.raises(
            ValueError,
            match=f'`{STALE_ENV}` should be a '
            "positive number of seconds, but got 'ten minutes'"):
        WorkDirLock(str(tmp_path)).acquire()


def test_same_host_lock_of_a_reused_pid_or_an_earlier_boot_is_taken_over(
        tmp_path):
    host = socket.gethostname()
    # This pid is alive, but the lock's process started at another time:
    # the pid now belongs to another process.
    path = write_lock(tmp_path, host=host, pid=os.getpid(), process_start='1')
    with WorkDirLock(str(tmp_path)):
        assert json.load(open(path))['took_over']['_why'] == \
            f'pid {os.getpid()} is now another process'
    if osp.exists('/proc/sys/kernel/random/boot_id'):
        path = write_lock(
            tmp_path, host=host, pid=os.getpid(), boot_id='an-earlier-boot')
        with WorkDirLock(str(tmp_path)):
            assert json.load(open(path))['took_over']['_why'] == \
                'this host has rebooted since'
    # The same pid, process and boot: live, refused.
    with WorkDirLock(str(tmp_path)):
        with pytest.raises(RuntimeError, match=f'kill {os.getpid()}'):
            WorkDirLock(str(tmp_path)).acquire()
