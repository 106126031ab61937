"""tools/export_student.py round trip and kill-and-resume through the CLI."""
import json
import os
import os.path as osp
import signal

import torch
from distkd_testing import (cli, save_teacher, tiny_classifier, tiny_distiller,
                            write_config)
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


def test_exported_student_loads_strictly_and_tests_like_the_distiller(
        imagenet_root, tmp_path):
    teacher = save_teacher(tmp_path / 'teacher.pth')
    work = str(tmp_path / 'distill')
    cfg = write_config(tmp_path / 'distill.py', imagenet_root, work,
                       tiny_distiller(teacher_ckpt=teacher), 1)
    assert cli(['tools/train.py', cfg], tmp_path).returncode == 0
    out = str(tmp_path / 'student.pth')
    result = cli(
        ['tools/export_student.py',
         osp.join(work, 'epoch_1.pth'), out], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]

    exported = torch.load(out, weights_only=True)
    student = MODELS.build(tiny_classifier(4))
    student.load_state_dict(exported['state_dict'], strict=True)

    plain = write_config(tmp_path / 'student.py', imagenet_root,
                         str(tmp_path / 'test'), tiny_classifier(4), 1)
    scores = {}
    for name, (config, ckpt) in dict(
            student=(plain, out),
            distiller=(cfg, osp.join(work, 'epoch_1.pth'))).items():
        dump = str(tmp_path / f'{name}.json')
        # mmpretrain's test.py: `--out-item metrics` dumps the metrics.
        result = cli([
            'tools/test.py', config, ckpt, '--out', dump, '--out-item',
            'metrics'
        ], tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        scores[name] = json.load(open(dump))['accuracy/top1']
    assert scores['student'] == scores['distiller']


def test_sigkilled_run_resumes_to_the_uninterrupted_weights(
        imagenet_root, tmp_path):
    (tmp_path / 'kill_hook.py').write_text(KILL_HOOK)
    teacher = save_teacher(tmp_path / 'teacher.pth')
    extra = dict(
        custom_imports=dict(imports=['distkd_mm', 'kill_hook']),
        custom_hooks=[dict(type='KillAtIterHook')])
    model = tiny_distiller(teacher_ckpt=teacher)
    full = write_config(tmp_path / 'full.py', imagenet_root,
                        str(tmp_path / 'full'), model, 3, **extra)
    assert cli(['tools/train.py', full], tmp_path).returncode == 0

    # 16 images, batch 4: 4 iterations an epoch; die in the 2nd epoch.
    killed = write_config(tmp_path / 'killed.py', imagenet_root,
                          str(tmp_path / 'killed'), model, 3, **extra)
    first = cli(['tools/train.py', killed], tmp_path, KILL_AT_ITER='6')
    assert first.returncode == -signal.SIGKILL
    assert os.listdir(tmp_path / 'killed').count('epoch_1.pth') == 1
    assert not osp.exists(tmp_path / 'killed' / 'epoch_2.pth')
    second = cli(['tools/train.py', killed, '--resume'], tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    # --resume with no path takes the latest checkpoint of the work dir.
    assert osp.join('killed', 'epoch_1.pth') in second.stdout

    # The run's own checkpoints (MMEngine log state in them): trusted.
    final = torch.load(
        tmp_path / 'killed' / 'epoch_3.pth', weights_only=False)['state_dict']
    expected = torch.load(
        tmp_path / 'full' / 'epoch_3.pth', weights_only=False)['state_dict']
    assert final.keys() == expected.keys()
    for key in final:
        assert torch.allclose(
            final[key].float(), expected[key].float(), atol=1e-6), key
