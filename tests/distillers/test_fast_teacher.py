"""The opt-in fast teacher: BatchNorm folding and a compiled backbone."""
import copy

import pytest
import torch
from distkd_testing import tiny_distiller
from mmengine.registry import MODELS
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from distkd_mm.distillers import fast_teacher
from distkd_mm.distillers.fast_teacher import FastTeacher
from distkd_mm.distillers.recorder import Recorder


@pytest.fixture
def logs(monkeypatch):
    messages = []
    monkeypatch.setattr(
        fast_teacher, '_log', lambda msg, level='info': messages.append(msg))
    return messages


def _randomise_bns(model: nn.Module, seed: int = 0) -> None:
    """Trained-looking BatchNorm statistics, so folding is not a no-op."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g))
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(n, generator=g))
            m.bias.data.copy_(torch.randn(n, generator=g))


def _pair(make_batch, **kwargs):
    """Two Distillers with identical weights, the second with ``kwargs``."""
    torch.manual_seed(0)
    plain = MODELS.build(tiny_distiller())
    _randomise_bns(plain.teacher)
    fast = MODELS.build(tiny_distiller(**kwargs))
    fast.load_state_dict(plain.state_dict())
    fast.teacher.load_state_dict(plain.teacher.state_dict())
    data = plain.data_preprocessor(make_batch(n=6, size=16), True)
    return plain, fast, data


def _teacher_logits(model, inputs):
    with torch.no_grad():
        return model.teacher(inputs, mode='tensor')


def test_folded_teacher_gives_the_unfolded_logits_and_loss(make_batch, logs):
    plain, fast, data = _pair(make_batch, teacher_fuse=True)
    expected = _teacher_logits(plain, data['inputs'])
    bns = sum(isinstance(m, _BatchNorm) for m in plain.teacher.modules())

    plain_loss = plain.loss(data['inputs'], data['data_samples'])
    fast_loss = fast.loss(data['inputs'], data['data_samples'])

    assert len(fast.teacher_run.fast.folded) == bns > 0
    assert not any(isinstance(m, _BatchNorm) for m in fast.teacher.modules())
    torch.testing.assert_close(
        _teacher_logits(fast, data['inputs']), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        fast_loss['loss_dist'], plain_loss['loss_dist'], rtol=1e-5, atol=0)
    assert any(f'folded {bns} BatchNorms' in m for m in logs)
    # The student and its checkpoint are untouched by the teacher's fold.
    assert set(fast.state_dict()) == set(plain.state_dict())


class _ReusedConvOutput(nn.Module):
    """``bn(conv(x)) + conv(x)``: the conv output also feeds the sum, so
    folding the BatchNorm into the convolution would change the result."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


def test_a_fold_that_changes_the_output_is_undone(logs):
    model = _ReusedConvOutput()
    _randomise_bns(model)
    model.eval().requires_grad_(False)
    x = torch.randn(2, 3, 8, 8)
    expected = model(x)
    recorder = Recorder(model, [''], 'teacher')
    fast = FastTeacher(model, fuse=True, compile=False, taps=[''])

    def forward():
        with recorder as outputs:
            model(x)
        return outputs

    outputs = fast(forward)

    assert fast.folded == []
    assert isinstance(model.bn, nn.BatchNorm2d)
    torch.testing.assert_close(outputs[''][0], expected)
    assert any('did not match' in m for m in logs)


def _failing_backend(graph_module, example_inputs):
    raise RuntimeError('no compiler on this machine')


def test_compile_falls_back_to_eager_when_compiling_fails(make_batch, logs):
    plain, fast, data = _pair(
        make_batch, teacher_compile=dict(backend=_failing_backend))
    expected = plain.loss(data['inputs'], data['data_samples'])

    losses = fast.loss(data['inputs'], data['data_samples'])

    torch.testing.assert_close(losses['loss_dist'], expected['loss_dist'])
    assert fast.teacher_run.fast.compiled is None
    assert any('running it eagerly' in m and 'no compiler' in m
               for m in logs), logs
    # The next step runs eagerly without trying again.
    again = fast.loss(data['inputs'], data['data_samples'])
    torch.testing.assert_close(again['loss_dist'], expected['loss_dist'])


def test_compiled_and_folded_teacher_matches_eager(make_batch, logs):
    torch._dynamo.reset()
    plain, fast, data = _pair(
        make_batch, teacher_fuse=True, teacher_compile=dict(backend='eager'))
    expected = plain.loss(data['inputs'], data['data_samples'])

    for _ in range(2):
        losses = fast.loss(data['inputs'], data['data_samples'])
        torch.testing.assert_close(
            losses['loss_dist'], expected['loss_dist'], rtol=1e-5, atol=0)
    assert fast.teacher_run.fast.compiled is fast.teacher.backbone
    assert fast.teacher_run.fast.folded


def _scripted_clock(ms_per_call):
    """A clock whose timed teacher forwards took ``ms_per_call`` ms."""
    times = []
    for ms in ms_per_call:
        times += [0., ms / 1e3]
    return iter(times).__next__


@pytest.mark.parametrize(
    'compiled_ms, eager_ms, kept',
    [
        ((5., 6.), (9., 8.), True),
        ((12., 11.), (9., 8.), False),
        ((9., 9.), (9., 9.), False),  # not faster: eager
    ])
def test_compiled_teacher_is_kept_only_where_it_measured_faster(
        make_batch, logs, compiled_ms, eager_ms, kept):
    torch._dynamo.reset()
    plain, fast, data = _pair(
        make_batch, teacher_compile=dict(backend='eager'))
    expected = plain.loss(data['inputs'], data['data_samples'])
    runs = fast.teacher_run.fast
    # The timed forwards alternate, compiled first.
    runs.clock = _scripted_clock(
        [ms for pair in zip(compiled_ms, eager_ms) for ms in pair])
    backbone = fast.teacher.backbone

    for _ in range(1 + 2 * fast_teacher.TRIAL_CALLS + 1):
        losses = fast.loss(data['inputs'], data['data_samples'])
        torch.testing.assert_close(
            losses['loss_dist'], expected['loss_dist'], rtol=1e-5, atol=0)

    assert runs._trial is None
    assert (runs.compiled is backbone) == kept
    assert ('forward' in vars(backbone)) == kept
    decision = 'kept compiled' if kept else 'running the teacher eagerly'
    assert any(decision in m for m in logs), logs


def test_a_frozen_teacher_compiles_with_inductors_freezing():
    assert fast_teacher.compile_options(True) == dict(
        options={'freezing': True})
    # What the user chose stays as it is.
    assert fast_teacher.compile_options(dict(mode='reduce-overhead')) == dict(
        mode='reduce-overhead')
    assert fast_teacher.compile_options(dict(backend='eager')) == dict(
        backend='eager')


@pytest.mark.slow
def test_inductor_frozen_teacher_gives_the_eager_losses(make_batch, logs):
    torch._dynamo.reset()
    plain, fast, data = _pair(make_batch, teacher_compile=True)
    expected = plain.loss(data['inputs'], data['data_samples'])

    for _ in range(2):
        losses = fast.loss(data['inputs'], data['data_samples'])
        torch.testing.assert_close(
            losses['loss_dist'], expected['loss_dist'], rtol=1e-4, atol=1e-6)
    assert fast.teacher_run.fast.compiled is fast.teacher.backbone


def test_compile_is_skipped_when_a_tap_is_in_the_backbone(logs):
    cfg = tiny_distiller(teacher_compile=True)
    cfg['distill_losses']['loss_dist'].update(
        student='backbone', teacher='backbone', loss=dict(type='DISTLoss'))
    model = MODELS.build(cfg)
    teacher = copy.deepcopy(model.teacher)
    x = torch.randn(2, 3, 16, 16)

    outputs = model.run_teacher(x, None)

    assert model.teacher_run.fast.compiled is None
    assert any("taps ['backbone']" in m for m in logs)
    torch.testing.assert_close(outputs['backbone'][0][0],
                               teacher.backbone(x)[0])


@pytest.mark.parametrize('kwargs, match', [
    (dict(teacher_fuse='yes'), '`teacher_fuse` should be a bool'),
    (dict(teacher_compile='max'), '`teacher_compile` should be a bool'),
])
def test_bad_fast_teacher_options_fail_at_build(kwargs, match):
    with pytest.raises(TypeError, match=match):
        MODELS.build(tiny_distiller(**kwargs))
