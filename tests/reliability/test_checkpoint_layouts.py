"""Checkpoint layouts and leftovers: EMA weights beside raw ones, a
truncated latest checkpoint on resume, a stale export ``.partial``."""
import os

import pytest
import torch
from distkd_testing import load_tool, tiny_classifier, tiny_distiller
from mmengine.registry import MODELS

from distkd_mm.utils.checkpoint import (CorruptCheckpointError,
                                        load_from_local_weights_only,
                                        resuming_own_checkpoint)


@pytest.mark.parametrize('layout', [('state_dict', 'state_dict_ema'),
                                    ('model', 'model_ema'), ('model_ema', )])
def test_ema_layouts_load_the_ema_and_say_so(tmp_path, log, layout):
    torch.manual_seed(0)
    raw = MODELS.build(tiny_classifier(8)).state_dict()
    ema = {k: v + 1 if v.is_floating_point() else v for k, v in raw.items()}
    saved = {key: ema if key.endswith('_ema') else raw for key in layout}
    path = str(tmp_path / 'timm.pth')
    torch.save(saved, path)
    model = MODELS.build(tiny_distiller(teacher_ckpt=path))
    teacher = model.teacher.state_dict()
    assert torch.equal(teacher['head.fc.weight'], ema['head.fc.weight'])
    assert f"using its {layout[-1]!r} weights" in log()


def test_truncated_latest_checkpoint_names_the_previous_one(tmp_path):
    state = {'state_dict': {'w': torch.ones(64)}}
    torch.save(state, str(tmp_path / 'epoch_1.pth'))
    torch.save(state, str(tmp_path / 'epoch_2.pth'))
    data = (tmp_path / 'epoch_2.pth').read_bytes()
    (tmp_path / 'epoch_2.pth').write_bytes(data[:len(data) // 2])
    with resuming_own_checkpoint(), pytest.raises(
            CorruptCheckpointError,
            match='resume from the previous one: `--resume '
            f'{tmp_path / "epoch_1.pth"}`'):
        load_from_local_weights_only(str(tmp_path / 'epoch_2.pth'))


def test_stale_partial_of_a_killed_export_is_removed(tmp_path):
    out = tmp_path / 'student.pth'
    # What a SIGKILLed export leaves: its temporary file, half written.
    (tmp_path / 'student.pth.x1y2.partial').write_bytes(b'half')
    load_tool('export_student').save_atomically({'w': torch.ones(2)}, str(out))
    assert os.listdir(tmp_path) == ['student.pth']
    assert torch.equal(torch.load(str(out))['w'], torch.ones(2))
