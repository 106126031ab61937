"""End to end: tools/demo.py trains all four models for one epoch."""
import json
import os.path as osp
import subprocess
import sys

import pytest

pytest.importorskip('mmpretrain')
pytest.importorskip('sklearn')
pytest.importorskip('matplotlib')

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_demo_one_epoch(tmp_path):
    work_dir = tmp_path / 'demo'
    # A subprocess, as `make demo` runs it: a fresh interpreter, its own
    # working directory, and MMEngine's global instances left untouched.
    cmd = [sys.executable, osp.join(REPO_ROOT, 'tools', 'demo.py')]
    cmd += ['--epochs', '1', '--seeds', '0', '--work-dir', str(work_dir)]
    proc = subprocess.run(
        cmd, cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    out = proc.stdout
    for label in ('teacher', 'baseline student', 'DIST student', 'KD student'):
        assert label in out
    plot = work_dir / 'val_accuracy.png'
    assert str(plot) in out
    assert plot.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'

    results = json.loads((work_dir / 'results.json').read_text())
    assert set(results) == {'0'}
    runs = results['0']
    assert set(runs) == {'teacher', 'baseline', 'dist', 'kd'}
    for run in runs.values():
        assert len(run['history']) == 1
        assert all(0.0 <= acc <= 1.0 for acc in run['history'])
    # The distilled students loaded the teacher the demo just trained.
    assert (work_dir / 'seed0' / 'teacher' / 'epoch_1.pth').is_file()
