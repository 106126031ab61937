"""tools/teacher_precision.py on the digits demo (CPU bf16 autocast)."""
import json
import os.path as osp

import pytest
from distkd_testing import REPO, load_tool


def _tool():
    return load_tool('teacher_precision')


def test_bf16_teacher_against_fp32_prints_json(demo_teacher_ckpt, capsys):
    tool = _tool()
    result = tool.main([
        osp.join(REPO, 'configs/demo/digits_dist.py'), '--teacher-ckpt',
        demo_teacher_ckpt, '--batches', '2', '--batch-size', '32'
    ])
    assert json.loads(capsys.readouterr().out) == result
    assert result['batches'] == 2 and result['dtype'] == 'bf16'
    assert set(result['loss_rel_change']) == {'loss_dist', 'total'}
    # bf16 really ran (the logits moved), and moved them only a little.
    assert 0 < result['max_abs_logit_diff'] < 0.5
    assert 0 <= result['loss_rel_change']['total'] < 0.05
    assert result['loss_fp32']['loss_dist'] > 0
    assert 0.5 < result['top1_agreement'] <= 1


def test_non_distiller_config_is_refused():
    tool = _tool()
    with pytest.raises(ValueError, match='Distiller'):
        tool.main([osp.join(REPO, 'configs/demo/digits_teacher.py')])
