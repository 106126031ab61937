"""Distributed launch on CPU: tools/dist_train.sh (torchrun), 2 ranks."""
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch
from distkd_testing import REPO

DUMP_HOOK = '''
import os
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class DumpStudentHook(Hook):
    """Each rank writes its own copy of the student, in the work dir,
    after training."""

    def after_train(self, runner):
        model = runner.model.module
        # Parameters only: BN running statistics stay per rank, as in any
        # MMEngine DDP run without SyncBN (broadcast_buffers=False).
        torch.save({k: v.detach().clone() for k, v in
                    model.student.named_parameters()},
                   os.path.join(runner.work_dir, f'rank{runner.rank}.pth'))
        torch.save({'world_size': runner.world_size,
                    'wrapper': type(runner.model).__name__},
                   os.path.join(runner.work_dir, f'info{runner.rank}.pth'))
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def ddp_config(tmp_path_factory, demo_teacher_ckpt) -> str:
    """The demo distillation, shortened to 2 steps of each rank and a
    small validation, with a per-rank weight dump."""
    tmp = tmp_path_factory.mktemp('ddp')
    (tmp / 'dump_hook.py').write_text(DUMP_HOOK)
    cfg = tmp / 'ddp_cfg.py'
    cfg.write_text(f'''
_base_ = {osp.join(REPO, 'configs/demo/digits_dist.py')!r}
custom_imports = dict(
    imports=['distkd_mm', 'distkd_mm.datasets', 'dump_hook'],
    allow_failed_imports=False)
model = dict(teacher_ckpt={demo_teacher_ckpt!r})
train_cfg = dict(max_epochs=1)
train_dataloader = dict(dataset=dict(indices=128))
val_dataloader = dict(dataset=dict(indices=32))
custom_hooks = [dict(type='DumpStudentHook')]
default_hooks = dict(teacher_gate=dict(enable=False))  # a random teacher
''')
    return str(cfg)


def run(cmd, cwd, tmp):
    env = dict(os.environ, PYTHONPATH=f'{tmp}:{REPO}', OMP_NUM_THREADS='1')
    result = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0, output
    return result


def test_dist_train_sh_runs_two_ranks_that_end_with_identical_students(
        ddp_config, monkeypatch):
    # tools/dist_train.sh is torchrun (torch.distributed.run) over
    # tools/train.py --launcher pytorch: one run covers both.
    tmp = osp.dirname(ddp_config)
    work = osp.join(tmp, 'work')
    monkeypatch.setenv('PYTHON', sys.executable)
    monkeypatch.setenv('PORT', str(free_port()))
    run(['bash', 'tools/dist_train.sh', ddp_config, '2', '--work-dir', work],
        REPO, tmp)
    rank0 = torch.load(osp.join(work, 'rank0.pth'))
    rank1 = torch.load(osp.join(work, 'rank1.pth'))
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    for rank in (0, 1):
        info = torch.load(osp.join(work, f'info{rank}.pth'))
        assert info == {
            'world_size': 2,
            'wrapper': 'MMDistributedDataParallel'
        }
    # The run's checkpoint (rank 0's, after the epoch) holds that student.
    ckpt = torch.load(osp.join(work, 'epoch_1.pth'), weights_only=False)
    assert all(
        torch.equal(ckpt['state_dict'][f'student.{k}'], v)
        for k, v in rank0.items())
