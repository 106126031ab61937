"""The scoped allowlist: teacher files load data only, nothing loaded
changes class-level state, and ``import distkd_mm`` does not widen
``torch.load`` for other code in the process."""
import pickle

import numpy as np
import pytest
import torch
from distkd_testing import save_teacher, tiny_distiller
from mmengine.logging import HistoryBuffer
from mmengine.registry import MODELS
from mmengine.runner import CheckpointLoader

import distkd_mm  # noqa: F401
from distkd_mm.utils.checkpoint import (CorruptCheckpointError, InertLogState,
                                        load_untrusted,
                                        resuming_own_checkpoint)


def _poisoned_teacher(path) -> str:
    """A teacher checkpoint whose log buffer's state replaces ``mean``.

    Written as an attacker would: a real ``HistoryBuffer`` pickled with a
    crafted state (``np.dtype`` passes any numpy allowlist).
    """
    save_teacher(path)
    checkpoint = torch.load(str(path), weights_only=True)
    checkpoint['message_hub'] = {
        'log_scalars': {
            'train/loss': HistoryBuffer()
        }
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            HistoryBuffer, '__getstate__', lambda self: dict(
                _log_history=np.zeros(1),
                _count_history=np.ones(1),
                max_length=10,
                statistics_methods={'mean': np.dtype}))
        torch.save(checkpoint, str(path))
    return str(path)


def test_poisoned_history_buffer_changes_nothing(tmp_path):
    HistoryBuffer()  # registers the built-in statistics methods
    mean = HistoryBuffer._statistics_methods['mean']
    assert mean is HistoryBuffer.mean
    path = _poisoned_teacher(tmp_path / 'teacher.pth')
    # As a teacher: weights load, the log state stays inert data.
    model = MODELS.build(tiny_distiller(teacher_ckpt=path))
    assert model.teacher is not None
    loaded = load_untrusted(path)
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, InertLogState)
    # Through MMEngine's own loader (load_from), and even while resuming.
    CheckpointLoader.load_checkpoint(path)
    with resuming_own_checkpoint():
        resumed = CheckpointLoader.load_checkpoint(path)
    assert isinstance(resumed['message_hub']['log_scalars']['train/loss'],
                      HistoryBuffer)
    assert HistoryBuffer._statistics_methods['mean'] is mean
    assert HistoryBuffer([1, 3], [1, 1]).mean() == 2


def test_import_does_not_widen_torch_load(tmp_path):
    path = _poisoned_teacher(tmp_path / 'teacher.pth')
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        torch.load(path, weights_only=True)
    assert not any('HistoryBuffer' in str(g)
                   for g in torch.serialization.get_safe_globals())


def test_code_running_file_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / 'pwned'

    class Payload:

        def __reduce__(self):
            return (open, (str(marker), 'w'))

    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'meta': Payload()}, path)

    def resume():
        with resuming_own_checkpoint():
            CheckpointLoader.load_checkpoint(path)

    for load in (lambda: load_untrusted(path),
                 lambda: MODELS.build(tiny_distiller(teacher_ckpt=path)),
                 lambda: CheckpointLoader.load_checkpoint(path), resume):
        with pytest.raises(
                RuntimeError,
                match='(?s)Refused to load.*could run code') as info:
            load()
        # The security refusal, not a complaint about a damaged file.
        assert not isinstance(info.value, CorruptCheckpointError)
    assert not marker.exists()
