"""Every shipped Distiller config checks its teacher before the first step:
the gate is on, bounded, and reachable from ``--cfg-options``."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    osp.relpath(path, REPO) for path in glob.glob(
        osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in path)


def _distiller_configs():
    out = []
    for name in CONFIGS:
        cfg = Config.fromfile(
            osp.join(REPO, name), import_custom_modules=False)
        if (cfg.get('model') or {}).get('type') == 'Distiller':
            out.append((name, cfg))
    return out


@pytest.mark.slow
def test_every_shipped_distiller_config_has_the_gate_on_and_bounded():
    configs = _distiller_configs()
    assert len(configs) >= 50  # the seed's rows, the demo, mimic variants
    for name, cfg in configs:
        gate = (cfg.get('default_hooks') or {}).get('teacher_gate')
        assert gate is not None, f'{name}: no default_hooks.teacher_gate'
        assert gate['type'] == 'TeacherGateHook', name
        assert gate.get('enable', True) is True, name
        # Bounded: a number of validation batches, not the whole set.
        batches = gate.get('max_eval_batches', 10)
        assert isinstance(batches, int) and 1 <= batches <= 10, name
        if name.startswith('configs/demo/'):
            # The demo's teacher is trained by the user: the fix says how.
            assert 'digits_teacher.py' in gate['fix'], name
