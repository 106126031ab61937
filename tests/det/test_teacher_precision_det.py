"""tools/teacher_precision.py on a two-stage pair: the teacher classifies
the student's RoIs, recorded once per batch for both precisions."""
import pytest
from det_helpers import FRCNN_DIST
from distkd_testing import load_tool


@pytest.mark.slow
def test_bf16_two_stage_teacher_is_compared_on_the_same_student_rois(
        make_det_cfg, tmp_path):
    cfg = make_det_cfg(FRCNN_DIST)
    cfg.val_dataloader.dataset.indices = 1
    config = str(tmp_path / 'frcnn.py')
    cfg.dump(config)
    result = load_tool('teacher_precision').main(
        [config, '--batches', '1', '--batch-size', '1'])
    assert result['batches'] == 1 and set(
        result['loss_rel_change']) == {'loss_dist', 'total'}
    # Same RoIs on both sides: bf16 moves the RoI logits only a little
    # (other proposals would move them by their whole size).
    assert 0 < result['max_abs_logit_diff'] < 0.5
    assert result['top1_agreement'] > 0.9
