"""The guard with MMEngine's AMP on a GPU (skipped without CUDA): an
overflowing step is left to the loss scaler, which skips it; an fp16
teacher overflow is recomputed in fp32."""
import glob

import pytest
import torch
from distkd_testing import runner_cfg, save_teacher, tiny_distiller
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import Runner

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason='needs CUDA (AMP loss scaler)')


@HOOKS.register_module(force=True)
class OverflowStudentOnceHook(Hook):
    """At ``at_iter`` scales the student's fc so fp16 logits overflow, then
    records whether the optimizer step was skipped and restores it."""

    def __init__(self, at_iter: int) -> None:
        self.at_iter = at_iter
        self.seen = {}

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if runner.iter == self.at_iter:
            fc = runner.model.student.head.fc
            with torch.no_grad():
                fc.weight.mul_(1e8)
            self.seen['before'] = {
                k: v.detach().clone()
                for k, v in runner.model.student.state_dict().items()
            }
            self.seen['scale'] = runner.optim_wrapper.loss_scaler.get_scale()

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        if runner.iter != self.at_iter:
            return
        after = runner.model.student.state_dict()
        self.seen['unchanged'] = all(
            torch.equal(after[k], v) for k, v in self.seen['before'].items())
        self.seen['new_scale'] = runner.optim_wrapper.loss_scaler.get_scale()
        with torch.no_grad():
            runner.model.student.head.fc.weight.div_(1e8)


def log_text(work) -> str:
    return ''.join(
        open(p).read() for p in glob.glob(str(work / '*' / '*.log')))


def test_amp_loss_scaler_skips_an_overflowing_step(imagenet_root, tmp_path):
    teacher = save_teacher(tmp_path / 'teacher.pth')
    cfg = runner_cfg(imagenet_root, str(tmp_path / 'work'),
                     tiny_distiller(teacher_ckpt=teacher), 2)
    cfg['optim_wrapper'] = dict(
        type='AmpOptimWrapper',
        dtype='float16',
        optimizer=dict(type='SGD', lr=0.05, momentum=0.9))
    cfg['custom_hooks'] = [dict(type='OverflowStudentOnceHook', at_iter=5)]
    runner = Runner.from_cfg(cfg)
    runner.train()  # no NonFiniteError: the scaler is in charge
    seen = next(
        h for h in runner.hooks if isinstance(h, OverflowStudentOnceHook)).seen
    assert seen['unchanged'], 'the overflowing step changed the weights'
    assert seen['new_scale'] < seen['scale']
    state = torch.load(
        tmp_path / 'work' / 'epoch_2.pth', weights_only=False)['state_dict']
    assert all(
        torch.isfinite(v).all() for v in state.values()
        if isinstance(v, torch.Tensor) and v.is_floating_point())
    assert log_text(
        tmp_path /
        'work').count('is non-finite under AMP: the loss scaler skips') == 1


def test_fp16_teacher_overflow_is_recomputed_on_cuda(imagenet_root, tmp_path):
    path = save_teacher(tmp_path / 'teacher.pth')
    checkpoint = torch.load(path, weights_only=True)
    checkpoint['state_dict']['head.fc.weight'] *= 1e6
    torch.save(checkpoint, path)
    cfg = runner_cfg(
        imagenet_root, str(tmp_path / 'work'),
        tiny_distiller(teacher_ckpt=path, teacher_autocast='fp16'), 1)
    Runner.from_cfg(cfg).train()
    assert log_text(tmp_path / 'work').count(
        "teacher tap 'head.fc' gave NaN/Inf under torch.float16") == 1
