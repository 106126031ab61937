"""Behaviour of the Distiller with tiny real mmpretrain classifiers."""
import copy

import pytest
import torch
from distkd_testing import tiny_classifier, tiny_distiller
from mmengine.optim import OptimWrapper
from mmengine.registry import MODELS


def build(**kwargs):
    # No teacher_ckpt: a notice in MMEngine's log (tests/distillers/
    # test_openmmlab_native.py checks it reaches the log file).
    return MODELS.build(tiny_distiller(**kwargs))


def test_loss_keys_are_the_students_plus_one_per_term(make_batch):
    model = build()
    data = model.data_preprocessor(make_batch(), True)
    losses = model(**data, mode='loss')
    student_keys = set(model.student(**data, mode='loss'))
    # mmpretrain's bare `loss` is renamed, so the logged `loss` stays the
    # optimised total.
    assert student_keys == {'loss'}
    assert set(losses) == {'loss_student', 'loss_dist'}
    assert losses['loss_dist'].requires_grad
    assert losses['loss_dist'].item() > 0


def test_distill_term_equals_dist_of_the_two_models_logits(make_batch):
    model = build()
    data = model.data_preprocessor(make_batch(), True)
    losses = model(**data, mode='loss')
    model.eval()  # the student's BN in eval mode is irrelevant for logits
    with torch.no_grad():
        model.student.train()
        s = model.student(data['inputs'], mode='tensor')
        t = model.teacher(data['inputs'], mode='tensor')
    expected = model.terms['loss_dist'].loss(s, t)
    assert torch.allclose(losses['loss_dist'], expected, atol=1e-6)


def test_teacher_unchanged_and_gradless_after_an_optimizer_step(make_batch):
    model = build()
    teacher_before = copy.deepcopy(model.teacher.state_dict())
    student_before = copy.deepcopy(model.student.state_dict())
    optim = OptimWrapper(
        torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                        lr=0.5))
    model.train()
    model.train_step(make_batch(), optim)
    for name, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[name]), name
    assert all(p.grad is None for p in model.teacher.parameters())
    assert not any(p.requires_grad for p in model.teacher.parameters())
    changed = [
        n for n, v in model.student.state_dict().items()
        if not torch.equal(v, student_before[n])
    ]
    assert changed, 'the student should have been updated'


def test_teacher_stays_in_eval_mode_after_train():
    model = build()
    model.train()
    assert model.student.training
    assert not any(m.training for m in model.teacher.modules())
    model.train(True)
    assert not model.teacher.training


def test_predict_and_tensor_modes_equal_the_students(make_batch):
    model = build()
    model.eval()
    data = model.data_preprocessor(make_batch(), False)
    with torch.no_grad():
        ours = model(**data, mode='predict')
        theirs = model.student(**data, mode='predict')
        assert torch.equal(
            model(data['inputs'], mode='tensor'),
            model.student(data['inputs'], mode='tensor'))
    for a, b in zip(ours, theirs):
        assert torch.equal(a.pred_score, b.pred_score)


def test_state_dict_holds_the_student_but_not_the_teacher():
    model = build()
    keys = list(model.state_dict())
    assert any(k.startswith('student.') for k in keys)
    assert not any(k.startswith('teacher.') for k in keys)
    # Loading it back into a fresh distiller complains about nothing.
    fresh = build()
    result = fresh.load_state_dict(model.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_teacher_is_no_submodule_so_ddp_never_sees_it():
    # DDP (and optimizers, SyncBN conversion) walk the module tree; the
    # teacher is kept out of it, so it is never broadcast or bucketed.
    model = build()
    teacher = {id(p) for p in model.teacher.parameters()}
    assert teacher
    assert not teacher & {id(p) for p in model.parameters()}
    assert not any(m is model.teacher for m in model.modules())
    assert not any(n.startswith('teacher') for n, _ in model.named_buffers())


def test_mistyped_tap_fails_at_build_with_a_suggestion():
    cfg = tiny_distiller()
    cfg['distill_losses']['loss_dist']['student'] = 'head.fcc'
    with pytest.raises(
            ValueError, match=r"'head\.fcc'.*Did you mean "
            r"'head\.fc'"):
        MODELS.build(cfg)


def test_other_class_count_fails_at_build_naming_both_counts():
    # When the model is built: before the Runner builds any data.
    with pytest.raises(ValueError) as info:
        build(teacher_classes=12)
    message = str(info.value)
    assert "student's `head` has num_classes=10" in message
    assert "teacher's `head` has num_classes=12" in message


def tiny_conformer() -> dict:
    """mmpretrain's Conformer (conv and transformer branches, a head that
    returns both logits), shrunk to 32 channels and 3 blocks."""
    return dict(
        type='mmpretrain.ImageClassifier',
        data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor'),
        backbone=dict(
            type='mmpretrain.Conformer',
            arch=dict(embed_dims=32, channel_ratio=1, num_heads=2, depths=3),
            base_channels=8),
        head=dict(
            type='mmpretrain.ConformerHead',
            num_classes=10,
            in_channels=[32, 32]))


def test_a_tuple_head_beside_a_tensor_head_fails_at_build_naming_a_branch(
        make_batch):
    cfg = tiny_distiller(student=tiny_conformer())
    cfg['distill_losses']['loss_dist'].update(student='head', teacher='head')
    with pytest.raises(ValueError, match='head.trans_cls_head') as err:
        MODELS.build(copy.deepcopy(cfg))
    assert 'ConformerHead' in str(err.value)
    # The branch it names pairs with the teacher's logits.
    cfg['distill_losses']['loss_dist']['student'] = 'head.trans_cls_head'
    model = MODELS.build(cfg)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))
    log_vars = model.train_step(make_batch(n=2, size=32), optim)
    assert torch.isfinite(log_vars['loss_dist']) and log_vars['loss_dist'] > 0


def test_taps_that_run_unequally_often_fail_naming_both(make_batch):
    # The student's first conv runs once, the teacher's head is tapped on
    # a module that does not run in tensor mode: the loss module.
    cfg = tiny_distiller()
    cfg['distill_losses']['loss_dist']['teacher'] = 'head.loss_module'
    model = MODELS.build(cfg)
    data = model.data_preprocessor(make_batch(), True)
    with pytest.raises(
            RuntimeError, match="ran 1 time.*'head.loss_module' "
            'ran 0 time'):
        model(**data, mode='loss')


@pytest.mark.parametrize('name,cfg,match', [
    ('dist', None, 'should contain "loss"'),
    ('loss_dist', dict(student='head.fc',
                       loss=dict(type='DISTLoss')), "lacks \\['teacher'\\]"),
])
def test_bad_distill_losses_are_rejected(name, cfg, match):
    cfg = cfg or dict(
        student='head.fc', teacher='head.fc', loss=dict(type='DISTLoss'))
    with pytest.raises(ValueError, match=match):
        MODELS.build(tiny_distiller(distill_losses={name: cfg}))


def test_bad_teacher_autocast_is_rejected():
    with pytest.raises(ValueError, match='`teacher_autocast` should be'):
        MODELS.build(tiny_distiller(teacher_autocast='half'))


def test_teacher_autocast_runs_the_teacher_in_bf16(make_batch):
    model = build(teacher_autocast='bf16')
    seen = []
    model.teacher.head.fc.register_forward_hook(
        lambda m, a, out: seen.append(out.dtype))
    data = model.data_preprocessor(make_batch(), True)
    losses = model(**data, mode='loss')
    assert seen == [torch.bfloat16]
    assert losses['loss_dist'].dtype == torch.float32


def test_student_config_takes_the_top_level_data_preprocessor():
    student = tiny_classifier(4)
    preprocessor = student.pop('data_preprocessor')
    preprocessor['mean'] = [1.0, 2.0, 3.0]
    model = build(student=student, data_preprocessor=preprocessor)
    assert model.data_preprocessor is model.student.data_preprocessor
    assert model.data_preprocessor.mean.flatten().tolist() == [1., 2., 3.]


def test_fast_path_defaults_keep_the_cpu_teacher_in_fp32(make_batch):
    model = build()
    assert model.teacher_run.autocast == 'auto'
    seen = []
    model.teacher.head.fc.register_forward_hook(
        lambda m, a, out: seen.append(out.dtype))
    data = model.data_preprocessor(make_batch(), True)
    model(**data, mode='loss')
    assert seen == [torch.float32]
    conv = model.teacher.backbone.conv1.weight
    assert not conv.is_contiguous(memory_format=torch.channels_last)


def test_channels_last_teacher_gives_the_same_distillation_term(make_batch):
    plain, fast = build(teacher_channels_last=False), build(
        teacher_channels_last=True)
    fast.load_state_dict(plain.state_dict())
    fast.teacher.load_state_dict(plain.teacher.state_dict())
    data = plain.data_preprocessor(make_batch(), True)
    a = plain(**data, mode='loss')['loss_dist']
    b = fast(**data, mode='loss')['loss_dist']
    assert fast.teacher.backbone.conv1.weight.is_contiguous(
        memory_format=torch.channels_last)
    assert torch.allclose(a, b, atol=1e-5)


def test_student_is_saved_once():
    keys = list(build().state_dict())
    fc = [k for k in keys if k.endswith('head.fc.weight')]
    assert fc == ['student.head.fc.weight']


def test_taps_record_only_inside_the_training_step(make_batch):
    model = build()
    tapped = [
        *model.student_taps.modules.values(),
        *model.teacher_run.taps.modules.values()
    ]
    data = model.data_preprocessor(make_batch(), True)
    model(**data, mode='loss')
    with torch.no_grad():
        model(data['inputs'], data['data_samples'], mode='predict')
    # No hook is left behind to keep a validation's tapped maps alive.
    assert all(not m._forward_hooks for m in tapped)
    with model.teacher_run.taps as outputs, torch.no_grad():
        model.teacher(data['inputs'], mode='tensor')
    assert [o.shape for o in outputs['head.fc']] == [(4, 10)]
    assert all(not m._forward_hooks for m in tapped)
    with model.teacher_run.taps:
        with pytest.raises(RuntimeError, match='one scope at a time'):
            model.teacher_run.taps.__enter__()


def test_init_cfg_initialises_the_student_but_never_the_teacher(tmp_path):
    donor = build()
    path = str(tmp_path / 'student.pth')
    torch.save({'state_dict': donor.state_dict()}, path)
    model = build(init_cfg=dict(type='Pretrained', checkpoint=path))
    teacher = copy.deepcopy(model.teacher.state_dict())

    model.init_weights()
    model.teacher.init_weights()  # e.g. a user's: a no-op once loaded

    for name, value in model.student.state_dict().items():
        assert torch.equal(value, donor.student.state_dict()[name]), name
    for name, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher[name]), name


def test_switched_off_distillation_keeps_connectors_in_the_graph(make_batch):
    model = build(
        distill_losses=dict(
            loss_dist=dict(
                student='head.fc',
                teacher='head.fc',
                connector=dict(
                    type='FPNAdapter',
                    in_channels=10,
                    out_channels=10,
                    num_levels=1),
                loss=dict(type='DISTLoss'))))
    model.distill_scale = 0.0
    data = model.data_preprocessor(make_batch(), True)
    losses = model(**data, mode='loss')
    assert losses['loss_dist'].item() == 0.0
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    # A gradient (zero) for every connector parameter: DDP sees them used.
    assert all(p.grad is not None for p in model.terms.parameters())
