"""End to end: tools/demo.py trains all four models for one epoch."""
import json

import pytest
import torch
from distkd_testing import load_tool, unformatted
from mmengine.config import Config

pytest.importorskip('mmpretrain')
pytest.importorskip('sklearn')
pytest.importorskip('matplotlib')


@pytest.mark.slow
def test_demo_one_epoch(tmp_path, monkeypatch, capsys):
    work_dir = tmp_path / 'demo'
    demo = load_tool('demo')
    build_cfg = demo.build_cfg

    def small(*args, **kwargs) -> Config:
        """The demo's config on 64 images (two training iterations), its
        text unformatted: yapf takes seconds each time a Runner logs,
        dumps or checkpoints it."""
        cfg = build_cfg(*args, **kwargs)
        cfg.merge_from_dict({
            'train_dataloader.dataset.indices': 64,
            'val_dataloader.dataset.indices': 64
        })
        if 'teacher_gate' in cfg.default_hooks:
            # A teacher of one epoch on 64 digits may be near chance.
            cfg.default_hooks.teacher_gate.enable = False
        return unformatted(cfg)

    monkeypatch.setattr(demo, 'build_cfg', small)
    # In this process (as `make demo` runs it, from another directory); the
    # demo sets torch's thread count, which the tests after it get back.
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    try:
        demo.main(
            ['--epochs', '1', '--seeds', '0', '--work-dir',
             str(work_dir)])
    finally:
        torch.set_num_threads(threads)

    out = capsys.readouterr().out
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
