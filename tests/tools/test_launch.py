"""Distributed launch on CPU: tools/dist_train.sh (torchrun), 2 ranks."""
import math
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch
from distkd_testing import REPO, logged_scalars, run_tool

# Each test starts two ranks through torchrun.
pytestmark = pytest.mark.slow

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


def demo_run_config(tmp, teacher_ckpt: str, hook_name: str, hook: str,
                    settings: str) -> str:
    """A config in ``tmp`` on the demo distillation with the trained
    teacher, loading ``hook`` (as module ``hook_name``), plus
    ``settings``."""
    (tmp / f'{hook_name}.py').write_text(hook)
    cfg = tmp / 'cfg.py'
    cfg.write_text(f'''
_base_ = {osp.join(REPO, 'configs/demo/digits_dist.py')!r}
custom_imports = dict(
    imports=['distkd_mm', 'distkd_mm.datasets', {hook_name!r}],
    allow_failed_imports=False)
model = dict(teacher_ckpt={teacher_ckpt!r})
train_cfg = dict(max_epochs=1)
val_dataloader = dict(dataset=dict(indices=32))
''' + settings)
    return str(cfg)


@pytest.fixture(scope='module')
def ddp_config(tmp_path_factory, demo_teacher_ckpt) -> str:
    """The demo distillation, shortened to 2 steps of each rank and a
    small validation, with a per-rank weight dump."""
    return demo_run_config(
        tmp_path_factory.mktemp('ddp'), demo_teacher_ckpt, 'dump_hook',
        DUMP_HOOK, '''
train_dataloader = dict(dataset=dict(indices=128))
custom_hooks = [dict(type='DumpStudentHook')]
default_hooks = dict(teacher_gate=dict(enable=False))  # a random teacher
''')


def run(cmd, cwd, tmp):
    env = dict(os.environ, PYTHONPATH=f'{tmp}:{REPO}', OMP_NUM_THREADS='1')
    result = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0, output
    return result


@pytest.mark.slow
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


STRATEGY_HOOK = '''
import os
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class DumpStrategyHook(Hook):
    """Each rank records what FlexibleRunner wrapped and optimised."""

    def after_train(self, runner):
        wrapped = runner.model.module
        named = list(runner.model.named_parameters())
        optimised = {id(p) for group in
                     runner.optim_wrapper.optimizer.param_groups
                     for p in group['params']}
        torch.save({
            'runner': type(runner).__name__,
            'strategy': type(runner.strategy).__name__,
            'wrapper': type(runner.model).__name__,
            'world_size': runner.world_size,
            'iters': runner.iter,
            'ddp_params': sorted(n for n, _ in named),
            'optimised': sorted(n for n, p in named if id(p) in optimised),
            'teacher_in_optimizer': any(
                id(p) in optimised for p in wrapped.teacher.parameters()),
            'teacher_frozen': not any(
                p.requires_grad for p in wrapped.teacher.parameters()),
            'distill_scale': wrapped.distill_scale,
        }, os.path.join(runner.work_dir, f'info{runner.rank}.pth'))
'''


@pytest.fixture(scope='module')
def flexible_config(tmp_path_factory, demo_teacher_ckpt) -> str:
    """The demo distillation under FlexibleRunner + DDPStrategy, as a user
    writes it (no backend, no device ids): 4 steps of each rank, the
    teacher gate on (a random teacher: a zero floor), a warm-up."""
    return demo_run_config(
        tmp_path_factory.mktemp('flexible'), demo_teacher_ckpt,
        'strategy_hook', STRATEGY_HOOK, '''
runner_type = 'FlexibleRunner'
strategy = dict(type='DDPStrategy')
env_cfg = dict(dist_cfg=dict(_delete_=True))  # MMEngine's default: NCCL
train_dataloader = dict(batch_size=16, dataset=dict(indices=128))
custom_hooks = [dict(type='DistillHook', warmup_iters=8),
                dict(type='DumpStrategyHook')]
default_hooks = dict(
    logger=dict(interval=1),
    teacher_gate=dict(min_teacher_score=0.0))
''')


def test_dist_train_sh_trains_a_distiller_under_flexible_runner_ddp(
        flexible_config, monkeypatch):
    tmp = osp.dirname(flexible_config)
    work = osp.join(tmp, 'work')
    monkeypatch.setenv('PYTHON', sys.executable)
    monkeypatch.setenv('PORT', str(free_port()))
    result = run([
        'bash', 'tools/dist_train.sh', flexible_config, '2', '--work-dir', work
    ], REPO, tmp)
    infos = [torch.load(osp.join(work, f'info{r}.pth')) for r in (0, 1)]
    student = infos[0]['ddp_params']
    for info in infos:
        assert info['runner'] == 'FlexibleRunner'
        assert info['strategy'] == 'DDPStrategy'
        assert info['wrapper'] == 'MMDistributedDataParallel'
        assert info['world_size'] == 2
        assert info['iters'] == 4  # 128 images, 16 a step, 2 ranks
        # DDP wraps (and the optimizer updates) the student only.
        assert info['ddp_params'] == student
        assert info['optimised'] == student
        assert not info['teacher_in_optimizer']
        assert info['teacher_frozen']
        assert info['distill_scale'] == 4 / 8  # DistillHook's warm-up ran
    assert student and all(n.startswith('module.student.') for n in student)
    # The teacher gate scored the teacher on the val loop before step 1.
    assert 'Teacher before training: ' in result.stdout + result.stderr
    scalars = logged_scalars(work)
    for key in ('loss', 'loss_student', 'loss_dist'):
        assert math.isfinite(scalars[key]) and scalars[key] > 0, key
    assert scalars['distill_scale'] == 4 / 8
    # The checkpoint holds the student (under DDPStrategy's `module.`),
    # no teacher, and exports to a plain student checkpoint.
    ckpt = torch.load(osp.join(work, 'epoch_1.pth'), weights_only=False)
    saved = {k for k in ckpt['state_dict'] if not k.endswith('_extra_state')}
    assert {k for k in saved if 'teacher' in k} == set()
    assert {n for n in student} <= saved
    exported = osp.join(tmp, 'student.pth')
    run_tool('export_student', osp.join(work, 'epoch_1.pth'), exported)
    plain = torch.load(exported, weights_only=False)['state_dict']
    assert {f'module.student.{k}' for k in plain} >= set(student)
