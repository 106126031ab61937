"""atomic_write: the target is the old file or the new one, never a part;
temporary files never outlive a write, or a killed writer's next run."""
import os
import stat
import time

import pytest

from distkd_mm.utils.atomic import atomic_write, is_temp_of, remove_stale_temps


def test_a_write_that_fails_midway_leaves_the_target_and_no_temp(tmp_path):
    target = tmp_path / 'teacher.pth'
    target.write_bytes(b'previous')
    with pytest.raises(OSError, match='disk full'):
        with atomic_write(str(target)) as f:
            f.write(b'half of the new')
            raise OSError('disk full')
    assert target.read_bytes() == b'previous'
    assert os.listdir(tmp_path) == ['teacher.pth']


def test_a_complete_write_replaces_the_target_with_open_permissions(tmp_path):
    target = tmp_path / 'teacher.pth'
    target.write_bytes(b'previous')
    old_mask = os.umask(0o027)
    try:
        with atomic_write(str(target)) as f:
            f.write(b'new')
            # Until the end of the block, the target is the old file.
            assert target.read_bytes() == b'previous'
    finally:
        os.umask(old_mask)
    assert target.read_bytes() == b'new'
    assert os.listdir(tmp_path) == ['teacher.pth']
    # 0666 minus the umask, not mkstemp's private 0600.
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640


def test_a_failing_check_aborts_before_the_rename(tmp_path):
    seen = []

    def check(name):
        seen.append((name, (tmp_path / name).read_bytes()))
        raise ValueError('wrong size')

    with pytest.raises(ValueError, match='wrong size'):
        with atomic_write(str(tmp_path / 'teacher.pth'), check=check) as f:
            f.write(b'body')
    # The check read the synced temporary file; nothing is left.
    assert seen[0][1] == b'body' and is_temp_of(seen[0][0], 'teacher.pth')
    assert os.listdir(tmp_path) == []


def test_a_write_relative_to_a_folder_descriptor_takes_a_bare_name(tmp_path):
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with atomic_write('teacher.pth', dir_fd=fd) as f:
            f.write(b'new')
        with pytest.raises(ValueError, match='`path` should be a file name'):
            with atomic_write(str(tmp_path / 'x.pth'), dir_fd=fd):
                pass
    finally:
        os.close(fd)
    assert os.listdir(tmp_path) == ['teacher.pth']


def test_stale_temps_go_by_target_and_age(tmp_path):
    names = ['a.pth.x1.partial', 'a.pth.x2.partial', 'b.pth.x3.partial']
    for name in names + ['a.pth', 'a.pth.partial']:
        (tmp_path / name).write_bytes(b'half')
    old = time.time() - 7200
    os.utime(tmp_path / names[0], (old, old))
    # Of any target, an hour old: only the first (a live writer may still
    # write the others).
    assert remove_stale_temps(str(tmp_path), older_than=3600) == [names[0]]
    # Of one target, any age.
    assert remove_stale_temps(str(tmp_path), 'a.pth') == [names[1]]
    assert sorted(os.listdir(tmp_path)) == [
        'a.pth', 'a.pth.partial', 'b.pth.x3.partial'
    ]
