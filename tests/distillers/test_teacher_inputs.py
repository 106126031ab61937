"""The teacher sees what its own data preprocessor would have made of the
raw images, whatever the student's preprocessing (cls, det, seg)."""
import copy

import pytest
import torch
from distkd_testing import runner_cfg, tiny_distiller
from mmengine.registry import MODELS, DefaultScope

from distkd_mm.distillers.teacher_inputs import TeacherInputs

IMAGENET = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
BGR_255 = dict(mean=[0, 0, 0], std=[255, 255, 255])


def cls_pre(**kwargs):
    return dict(type='mmpretrain.ClsDataPreprocessor', **kwargs)


def det_pre(**kwargs):
    return dict(type='mmdet.DetDataPreprocessor', **kwargs)


def seg_pre(**kwargs):
    return dict(type='mmseg.SegDataPreProcessor', **kwargs)


def raw_det_batch(sizes, seed=0):
    """uint8 images of different sizes, as mmdet's loader gives them."""
    from mmdet.structures import DetDataSample
    g = torch.Generator().manual_seed(seed)
    inputs = [
        torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)
        for h, w in sizes
    ]
    samples = [DetDataSample(metainfo=dict(img_shape=s)) for s in sizes]
    return dict(inputs=inputs, data_samples=samples)


def raw_seg_batch(sizes, seed=0):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for h, w in sizes:
        inputs.append(
            torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8))
        sample = SegDataSample(metainfo=dict(img_shape=(h, w)))
        sample.gt_sem_seg = PixelData(
            data=torch.zeros(1, h, w, dtype=torch.long))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def derived_and_own(student_cfg, teacher_cfg, data, mode='own'):
    """The teacher's batch derived from the student's, and the batch the
    teacher's own preprocessor makes from the same raw data."""
    student, teacher = MODELS.build(student_cfg), MODELS.build(teacher_cfg)
    mapping = TeacherInputs(student, teacher, mode, given=True)
    batch = student(copy.deepcopy(data), training=True)
    own = teacher(copy.deepcopy(data), training=True)['inputs']
    return mapping(batch['inputs'], batch['data_samples']), own, batch


def test_a_teacher_inside_a_distiller_computes_what_it_computes_on_its_own(
        make_batch):
    # A BGR teacher with mean 0 / std 255 beside an RGB ImageNet student.
    cfg = tiny_distiller()
    cfg['student']['data_preprocessor'] = cls_pre(to_rgb=True, **IMAGENET)
    cfg['teacher']['data_preprocessor'] = cls_pre(**BGR_255)
    model = MODELS.build(cfg)
    data = make_batch(4)
    batch = model.data_preprocessor(copy.deepcopy(data), training=True)
    with torch.no_grad():
        alone = model.teacher(
            model.teacher.data_preprocessor(copy.deepcopy(data))['inputs'])
    inside = model.run_teacher(batch['inputs'],
                               batch['data_samples'])['head.fc'][0]
    torch.testing.assert_close(inside, alone, atol=1e-4, rtol=1e-4)
    # The student's batch as it is gives the teacher other logits.
    cfg['teacher_preprocess'] = 'student'
    unmapped = MODELS.build(cfg).run_teacher(batch['inputs'], None)
    assert not torch.allclose(unmapped['head.fc'][0], alone, atol=1e-2)


@pytest.mark.parametrize('student,teacher', [
    (cls_pre(to_rgb=True, **IMAGENET), cls_pre(**BGR_255)),
    (cls_pre(**BGR_255), cls_pre(to_rgb=True, **IMAGENET)),
    (cls_pre(to_rgb=True, **IMAGENET), cls_pre(to_rgb=True, **IMAGENET)),
    (cls_pre(), cls_pre(mean=[10, 20, 30], std=[2, 3, 4])),
])
def test_classification_batches_map_exactly(make_batch, student, teacher):
    derived, own, _ = derived_and_own(student, teacher, make_batch(3))
    torch.testing.assert_close(derived, own, atol=1e-4, rtol=1e-5)


def test_detection_caffe_student_and_pytorch_teacher_map_with_padding():
    caffe = det_pre(
        mean=[103.53, 116.28, 123.675], std=[1, 1, 1], pad_size_divisor=32)
    pytorch = det_pre(bgr_to_rgb=True, pad_size_divisor=32, **IMAGENET)
    data = raw_det_batch([(40, 52), (33, 64)])
    derived, own, batch = derived_and_own(caffe, pytorch, data)
    assert batch['inputs'].shape[-2:] == (64, 64)  # padded images
    torch.testing.assert_close(derived, own, atol=1e-4, rtol=1e-5)


def test_padded_pixels_get_the_teachers_pad_value_when_means_differ():
    # Student pad 0 is raw pixel 0; the teacher pads its own 0 = raw 128.
    student = det_pre(pad_size_divisor=32)
    teacher = det_pre(mean=[128] * 3, std=[64] * 3, pad_size_divisor=32)
    data = raw_det_batch([(40, 52), (64, 30)])
    derived, own, _ = derived_and_own(student, teacher, data)
    torch.testing.assert_close(derived, own, atol=1e-4, rtol=1e-5)
    assert own[0, :, 50:].eq(0).all()  # really padded, really repaired


def test_segmentation_batches_map_with_padding_to_the_crop_size():
    student = seg_pre(bgr_to_rgb=True, size=(32, 32), **IMAGENET)
    teacher = seg_pre(mean=[100] * 3, std=[50] * 3, size=(32, 32))
    data = raw_seg_batch([(32, 32), (24, 28)])
    derived, own, _ = derived_and_own(student, teacher, data)
    torch.testing.assert_close(derived, own, atol=1e-4, rtol=1e-5)


def test_another_padding_is_refused_when_the_model_is_built():
    cfg = tiny_distiller()
    cfg['student']['data_preprocessor'] = cls_pre(pad_size_divisor=32)
    cfg['teacher']['data_preprocessor'] = cls_pre(pad_size_divisor=1)
    with pytest.raises(ValueError) as err:
        MODELS.build(cfg)
    message = str(err.value)
    assert 'pad_size_divisor=32' in message
    assert 'pad_size_divisor=1' in message
    assert 'teacher_preprocess="normalize_only"' in message
    # The switch accepts the student's padding and still maps the values.
    cfg['teacher_preprocess'] = 'normalize_only'
    MODELS.build(cfg)


def test_padded_batch_augments_that_cannot_be_derived_are_refused():
    student = dict(
        type='mmdet.DetDataPreprocessor',
        pad_size_divisor=32,
        batch_augments=[dict(type='mmdet.BatchFixedSizePad', size=(64, 64))])
    teacher = det_pre(mean=[128] * 3, std=[64] * 3, pad_size_divisor=32)
    with pytest.raises(ValueError, match='batch augments'):
        TeacherInputs(
            MODELS.build(student), MODELS.build(teacher), 'own', given=True)


def test_a_teacher_without_a_preprocessor_takes_the_students_batch(make_batch):
    cfg = tiny_distiller()
    del cfg['teacher']['data_preprocessor']
    # mmpretrain's default preprocessor is named without a scope: built in
    # the scope of a run (here, whatever an earlier test left current).
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg)
    batch = model.data_preprocessor(make_batch(2), training=True)
    assert model.teacher_inputs(batch['inputs']) is batch['inputs']


def test_a_nan_input_batch_is_named_as_damaged_data(make_batch):
    model = MODELS.build(tiny_distiller())
    batch = model.data_preprocessor(make_batch(4), training=True)
    batch['inputs'][2, 0, 3, 3] = float('nan')
    with pytest.raises(FloatingPointError, match=r'samples \[2\]'):
        model(**batch, mode='loss')


def test_ema_of_a_distiller_averages_the_student_and_shares_the_teacher():
    from mmengine.model import ExponentialMovingAverage
    model = MODELS.build(tiny_distiller())
    ema = ExponentialMovingAverage(model)
    assert ema.module.teacher is model.teacher
    assert ema.module.teacher_run is model.teacher_run
    student = dict(model.student.named_parameters())
    for name, param in ema.module.student.named_parameters():
        assert param.data_ptr() != student[name].data_ptr()
        torch.testing.assert_close(param, student[name])


@pytest.mark.slow
def test_mmengines_ema_hook_on_a_distiller_holds_one_teacher(
        imagenet_root, tmp_path):
    from mmengine.hooks import EMAHook
    from mmengine.runner import Runner
    model = tiny_distiller()
    model['student']['head']['num_classes'] = 4
    model['teacher']['head']['num_classes'] = 4
    cfg = runner_cfg(imagenet_root, str(tmp_path), model, 1)
    cfg['custom_hooks'] = [dict(type='EMAHook')]
    cfg['train_cfg']['val_interval'] = 2  # no validation: one epoch only
    runner = Runner.from_cfg(cfg)
    runner.train()
    ema = next(h for h in runner.hooks if isinstance(h, EMAHook))
    assert ema.ema_model.module.teacher is runner.model.teacher
    assert ema.ema_model.module.student is not runner.model.student


def test_batch_augments_without_padding_map_and_padded_ones_stop(make_batch):
    mixup = [dict(type='mmpretrain.Mixup', alpha=1.)]
    student = MODELS.build(
        cls_pre(
            to_rgb=True,
            num_classes=10,
            batch_augments=dict(augments=mixup),
            **IMAGENET))
    teacher = MODELS.build(cls_pre(**BGR_255))
    # Classification batches of one size have no padding to move: built.
    mapping = TeacherInputs(student, teacher, 'own', given=True)
    assert mapping.repad
    batch = student(make_batch(4), training=True)
    derived = mapping(batch['inputs'], batch['data_samples'])
    assert derived.shape == batch['inputs'].shape
    # Images of other sizes are padded, then mixed: stopped at that batch.
    data = make_batch(2)
    data['inputs'][1] = data['inputs'][1][:, :12, :12]
    batch = student(data, training=True)
    batch['data_samples'][1].set_metainfo(dict(img_shape=(12, 12)))
    with pytest.raises(RuntimeError, match='batch augments move padded'):
        mapping(batch['inputs'], batch['data_samples'])
