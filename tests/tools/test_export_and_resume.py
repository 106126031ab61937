"""tools/export_student.py round trip and kill-and-resume through the CLI.

One distillation run (in this process) serves both: its checkpoint is
exported and tested, and its weights are what a SIGKILLed command-line run
of the same config should resume to.
"""
import json
import os
import os.path as osp
import signal

import pytest
import torch
from distkd_testing import (cli_start, run_tool, save_teacher, tiny_classifier,
                            tiny_distiller, write_config)
from mmengine.registry import MODELS

KILL_HOOK = '''
import os
import signal
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class KillAtIterHook(Hook):
    """SIGKILLs the process (no clean-up at all) at $KILL_AT_ITER."""

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        at = os.environ.get('KILL_AT_ITER')
        if at is not None and runner.iter == int(at):
            os.kill(os.getpid(), signal.SIGKILL)
'''


@pytest.fixture(scope='module')
def distilled(imagenet_root, tmp_path_factory) -> dict:
    """Two configs of one 2-epoch distillation with the kill hook: ``full``
    trained here, unhindered, while ``killed`` runs on the command line
    (beside it) and is SIGKILLed in its 2nd epoch (``killed_run``)."""
    tmp = tmp_path_factory.mktemp('export_and_resume')
    (tmp / 'kill_hook.py').write_text(KILL_HOOK)
    teacher = save_teacher(tmp / 'teacher.pth')
    extra = dict(
        custom_imports=dict(imports=['distkd_mm', 'kill_hook']),
        custom_hooks=[dict(type='KillAtIterHook')])
    model = tiny_distiller(teacher_ckpt=teacher)
    configs = {}
    for name in ('full', 'killed'):
        configs[name] = write_config(tmp / f'{name}.py', imagenet_root,
                                     str(tmp / name), model, 2, **extra)
    # 16 images, batch 4: 4 iterations an epoch; die in the 2nd epoch.
    killed = cli_start(['tools/train.py', configs['killed']],
                       tmp,
                       KILL_AT_ITER='6')
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.syspath_prepend(str(tmp))
            run_tool('train', configs['full'])
    finally:
        _, stderr = killed.communicate(timeout=300)
    return dict(
        tmp=tmp, killed_run=(killed.returncode, stderr[-3000:]), **configs)


@pytest.mark.slow
def test_exported_student_loads_strictly_and_tests_like_the_distiller(
        distilled, imagenet_root, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(distilled['tmp']))
    ckpt = str(distilled['tmp'] / 'full' / 'epoch_2.pth')
    out = str(tmp_path / 'student.pth')
    run_tool('export_student', ckpt, out)

    exported = torch.load(out, weights_only=True)
    student = MODELS.build(tiny_classifier(4))
    student.load_state_dict(exported['state_dict'], strict=True)

    plain = write_config(tmp_path / 'student.py', imagenet_root,
                         str(tmp_path / 'test'), tiny_classifier(4), 1)
    scores = {}
    for name, (config, weights) in dict(
            student=(plain, out), distiller=(distilled['full'], ckpt)).items():
        dump = str(tmp_path / f'{name}.json')
        # mmpretrain's test.py: `--out-item metrics` dumps the metrics.
        run_tool('test', config, weights, '--out', dump, '--out-item',
                 'metrics', '--work-dir', str(tmp_path / name))
        scores[name] = json.load(open(dump))['accuracy/top1']
    assert scores['student'] == scores['distiller']


@pytest.mark.slow
def test_sigkilled_run_resumes_to_the_uninterrupted_weights(
        distilled, monkeypatch, capsys):
    tmp = distilled['tmp']
    returncode, stderr = distilled['killed_run']
    assert returncode == -signal.SIGKILL, stderr
    assert os.listdir(tmp / 'killed').count('epoch_1.pth') == 1
    assert not osp.exists(tmp / 'killed' / 'epoch_2.pth')
    monkeypatch.syspath_prepend(str(tmp))
    run_tool('train', distilled['killed'], '--resume')
    # --resume with no path takes the latest checkpoint of the work dir.
    assert osp.join('killed', 'epoch_1.pth') in capsys.readouterr().out

    # The run's own checkpoints (MMEngine log state in them): trusted.
    final = torch.load(
        tmp / 'killed' / 'epoch_2.pth', weights_only=False)['state_dict']
    expected = torch.load(
        tmp / 'full' / 'epoch_2.pth', weights_only=False)['state_dict']
    assert final.keys() == expected.keys()
    for key in final:
        assert torch.allclose(
            final[key].float(), expected[key].float(), atol=1e-6), key


@pytest.mark.slow
def test_resume_of_a_truncated_latest_checkpoint_names_the_previous_one(
        imagenet_root, tmp_path):
    from distkd_mm.utils.checkpoint import CorruptCheckpointError
    work = tmp_path / 'work'
    config = write_config(tmp_path / 'plain.py', imagenet_root, str(work),
                          tiny_classifier(4), 2)
    run_tool('train', config)
    # A run killed while saving its 2nd checkpoint: the latest is cut off.
    latest = work / 'epoch_2.pth'
    latest.write_bytes(latest.read_bytes()[:latest.stat().st_size // 2])
    # tools/train.py reads it first (the auto-resume check), then the
    # Runner: both name the work dir's previous complete checkpoint.
    with pytest.raises(CorruptCheckpointError) as info:
        run_tool('train', config, '--resume')
    assert f'resume from the previous one: `--resume {work / "epoch_1.pth"}`' \
        in str(info.value)
    assert 'Re-download' not in str(info.value)
    assert not (work / 'train.lock').exists()
