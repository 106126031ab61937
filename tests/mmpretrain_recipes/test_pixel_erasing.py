"""DISTRandomErasing against the seed's description of its random erasing.

The seed (timm's ``RandomErasing(0.2, mode='pixel')``, one box, on the
normalised batch): each image erased with probability 0.2; box area
fraction ~ U(0.02, 1/3), log aspect ratio ~ U(log 0.3, log 1/0.3), redrawn
up to 10 times until the box fits inside the image; the box filled with
per-pixel N(0, 1) noise, unclipped; the teacher takes the same tensor.
"""
import math
import random

import numpy as np
import pytest
import torch
from distkd_testing import tiny_distiller
from mmengine.registry import MODELS, DefaultScope
from recipe_helpers import load

from distkd_mm.datasets import DISTRandomErasing

B2 = 'dist_r50-sb_r18_8xb96-450e_in1k.py'
MIN_AREA, MAX_AREA, MIN_ASPECT = 0.02, 1 / 3, 0.3


def _accepted_area_moments(side: int = 224) -> tuple:
    """Mean and std of the erased area fraction, from the seed's sampling
    rule on a grid of (area, log aspect) values: uniform, restricted to the
    boxes that fit (the first fitting draw of iid draws is distributed as
    one draw conditioned on fitting)."""
    area = np.linspace(MIN_AREA, MAX_AREA, 801)
    log_r = np.linspace(math.log(MIN_ASPECT), -math.log(MIN_ASPECT), 801)
    a, t = np.meshgrid(area, log_r, indexing='ij')
    h = np.round(np.sqrt(a * side * side * np.exp(t)))
    w = np.round(np.sqrt(a * side * side / np.exp(t)))
    fits = (h < side) & (w < side)
    frac = h * w / (side * side)
    mean = frac[fits].mean()
    return mean, frac[fits].std(), fits.mean()


def _changed_boxes(before: torch.Tensor, after: torch.Tensor) -> list:
    """Per image: None, or (top, left, h, w) of the changed pixels, after
    checking they form one full rectangle in every channel."""
    boxes = []
    for x, y in zip(before, after):
        changed = x != y
        if not changed.any():
            boxes.append(None)
            continue
        mask = changed.any(0)
        assert torch.equal(changed, mask.expand_as(changed)), 'channels'
        rows = mask.any(1).nonzero().flatten()
        cols = mask.any(0).nonzero().flatten()
        top, left = int(rows[0]), int(cols[0])
        h, w = int(rows[-1]) - top + 1, int(cols[-1]) - left + 1
        assert int(mask.sum()) == h * w, 'not one rectangle'
        boxes.append((top, left, h, w))
    return boxes


def test_erase_rate_is_the_probability():
    random.seed(0)
    torch.manual_seed(0)
    erasing = DISTRandomErasing(prob=0.2)
    before = torch.randn(3000, 3, 32, 32)
    after, _ = erasing(before, torch.zeros(3000, 10))
    boxes = _changed_boxes(before, after)
    rate = sum(b is not None for b in boxes) / len(boxes)
    # 0.2 x P(a box fits within 10 draws) (1 - 1e-15 here); 4 sigma.
    assert abs(rate - 0.2) < 4 * math.sqrt(0.2 * 0.8 / 3000)


def test_erased_area_and_aspect_follow_the_seeds_sampling():
    random.seed(0)
    erasing = DISTRandomErasing(prob=1.0)
    boxes = [erasing.sample_box(224, 224) for _ in range(20000)]
    mean, std, fit = _accepted_area_moments()
    assert 0.95 < fit < 1  # the largest, most elongated boxes are redrawn
    assert all(b is not None for b in boxes)
    frac = np.array([h * w for _, _, h, w in boxes]) / 224**2
    aspect = np.array([h / w for _, _, h, w in boxes])
    # Rounding of h and w moves the fraction by at most ~1/224 x 2 sides.
    assert frac.min() >= MIN_AREA - 0.005 and frac.max() <= MAX_AREA + 0.01
    assert frac.mean() == pytest.approx(mean, abs=4 * std / math.sqrt(2e4))
    assert frac.std() == pytest.approx(std, rel=0.03)
    assert aspect.min() >= MIN_ASPECT * 0.95
    assert aspect.max() <= 1 / MIN_ASPECT * 1.05
    # Log-uniform aspect: as many tall boxes as wide ones.
    assert abs(np.mean(aspect > 1) - np.mean(aspect < 1)) < 0.03
    for top, left, h, w in boxes:
        assert 0 <= top <= 224 - h and 0 <= left <= 224 - w


def test_noise_is_unclipped_standard_normal_and_the_rest_unchanged():
    random.seed(1)
    torch.manual_seed(1)
    before = torch.randn(200, 3, 64, 64) * 0.1 + 7.0  # far from the noise
    score = torch.rand(200, 10)
    after, out_score = DISTRandomErasing(prob=1.0)(before.clone(), score)
    assert out_score is score
    boxes = _changed_boxes(before, after)
    assert all(b is not None for b in boxes)
    noise, keep = [], torch.ones_like(before, dtype=torch.bool)
    for i, (top, left, h, w) in enumerate(boxes):
        noise.append(after[i, :, top:top + h, left:left + w].flatten())
        keep[i, :, top:top + h, left:left + w] = False
    noise = torch.cat(noise).double()
    assert noise.numel() > 300000
    assert abs(float(noise.mean())) < 0.01
    assert float(noise.std()) == pytest.approx(1.0, abs=0.01)
    # Unclipped: the normal's tails are there (~0.27 % beyond 3 sigma).
    beyond = float((noise.abs() > 3).double().mean())
    assert beyond == pytest.approx(0.0027, rel=0.2)
    assert torch.equal(after[keep], before[keep])


def test_the_callers_batch_is_left_as_it_is():
    random.seed(0)
    before = torch.randn(8, 3, 16, 16)
    copy = before.clone()
    after, _ = DISTRandomErasing(prob=1.0)(before, torch.zeros(8, 2))
    assert torch.equal(before, copy) and not torch.equal(after, before)
    untouched, _ = DISTRandomErasing(prob=0.0)(before, torch.zeros(8, 2))
    assert untouched is before


@pytest.mark.parametrize('kwargs, match', [
    (dict(prob=1.5), '`prob` should be in'),
    (dict(min_area_ratio=0.5, max_area_ratio=0.2), '`min_area_ratio`'),
    (dict(min_area_ratio=0.0), '`min_area_ratio`'),
    (dict(min_aspect_ratio=0.0), '`min_aspect_ratio`'),
    (dict(min_aspect_ratio=2.0, max_aspect_ratio=1.0), '`min_aspect_ratio`'),
    (dict(max_attempts=0), '`max_attempts` should be'),
])
def test_bad_arguments_fail_early(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DISTRandomErasing(**kwargs)


def test_a_batch_that_is_not_nchw_is_refused():
    with pytest.raises(ValueError, match=r'`inputs` should be a batch'):
        DISTRandomErasing()(torch.zeros(3, 8, 8), torch.zeros(3, 2))


def _b2_preprocessor():
    """The B2 student's data preprocessor as its classifier builds it."""
    cfg = load(B2)
    student = dict(
        type='mmpretrain.ImageClassifier',
        backbone=dict(type='mmpretrain.ResNet', depth=18),
        data_preprocessor=dict(
            cfg.data_preprocessor, type='mmpretrain.ClsDataPreprocessor'),
        train_cfg=cfg.model.student.train_cfg)
    return MODELS.build(student).data_preprocessor


def test_b2_config_erases_the_normalised_batch_with_the_seeds_values(
        make_batch):
    pre = _b2_preprocessor()
    (erasing, ) = pre.batch_augments.augments
    assert isinstance(erasing, DISTRandomErasing)
    assert erasing.prob == 0.2 and erasing.max_attempts == 10
    assert (erasing.min_area_ratio, erasing.max_area_ratio) == (MIN_AREA,
                                                                MAX_AREA)
    assert np.exp(erasing.log_aspect_range) == pytest.approx(
        (MIN_ASPECT, 1 / MIN_ASPECT))
    assert 'RandomErasing' not in {
        s.type
        for s in load(B2).train_dataloader.dataset.pipeline
    }
    batch = make_batch(64, 32, 1000)
    normalised = pre(batch, training=False)['inputs']
    random.seed(3)
    torch.manual_seed(3)
    erased = pre(batch, training=True)['inputs']
    boxes = [b or (0, 0, 0, 0) for b in _changed_boxes(normalised, erased)]
    assert 0 < sum(b[2] > 0 for b in boxes) < 64
    # N(0, 1) in normalised units, unclipped: values no uint8 image gives
    # after normalisation occur (erasing before it clips them).
    noise = torch.cat([
        erased[i, :, top:top + h, left:left + w].flatten()
        for i, (top, left, h, w) in enumerate(boxes) if h
    ])
    assert float(noise.std()) == pytest.approx(1.0, abs=0.05)
    lowest = float(((0 - pre.mean) / pre.std).min())
    highest = float(((255 - pre.mean) / pre.std).max())
    assert float(noise.min()) < lowest and float(noise.max()) > highest
    # Labels keep their values (one-hot scores, as batch augments give).
    samples = pre(batch, training=True)['data_samples']
    assert [int(s.gt_label) for s in samples] == list(range(64))


def _erasing_distiller() -> dict:
    """Two tiny classifiers; the student erases every image."""
    cfg = tiny_distiller()
    cfg['student']['train_cfg'] = dict(
        augments=dict(type='DISTRandomErasing', prob=1.0))
    # Batch augments score one-hot labels, for which mmpretrain needs the
    # class count.
    cfg['student']['data_preprocessor']['num_classes'] = 10
    return cfg


def test_the_teacher_sees_the_erased_images(make_batch):
    """As the seed's teacher takes the student's augmented tensor: the
    teacher's batch is derived from the erased one, in the teacher's own
    units where its preprocessing differs."""
    cfg = _erasing_distiller()
    # Another mean, std and channel order; the pad values map onto each
    # other ((127.5 - mean) / std = 0.5), which the Distiller requires
    # beside batch augments.
    cfg['teacher']['data_preprocessor'].update(
        mean=[100.0, 110.0, 120.0],
        std=[55.0, 35.0, 15.0],
        to_rgb=True,
        pad_value=0.5)
    model = MODELS.build(cfg)
    batch = make_batch(8, 16, 10)
    random.seed(0)
    torch.manual_seed(0)
    data = model.data_preprocessor(batch, training=True)
    inputs = data['inputs']
    teacher = model.teacher_inputs(inputs, data['data_samples'])
    own = model.teacher.data_preprocessor(batch, training=False)['inputs']
    student_own = model.data_preprocessor(batch, training=False)['inputs']
    boxes = _changed_boxes(student_own, inputs)
    assert all(b is not None for b in boxes)
    for i, (top, left, h, w) in enumerate(boxes):
        inside = torch.zeros(16, 16, dtype=torch.bool)
        inside[top:top + h, left:left + w] = True
        # Outside the box: the teacher's own preprocessing of the image.
        assert torch.allclose(
            teacher[i][:, ~inside], own[i][:, ~inside], atol=1e-4)
        # Inside: the student's noise, mapped to the teacher's units (raw
        # value = noise * std_s + mean_s, channel order flipped).
        raw = inputs[i] * model.data_preprocessor.std + \
            model.data_preprocessor.mean
        mapped = (raw.flip(0) - model.teacher.data_preprocessor.mean) / \
            model.teacher.data_preprocessor.std
        assert torch.allclose(
            teacher[i][:, inside], mapped[:, inside], atol=1e-4)
        assert not torch.allclose(teacher[i][:, inside], own[i][:, inside])


def test_with_the_same_preprocessing_the_teacher_takes_the_same_tensor(
        make_batch):
    model = MODELS.build(_erasing_distiller())
    data = model.data_preprocessor(make_batch(4, 16, 10), training=True)
    teacher = model.teacher_inputs(data['inputs'], data['data_samples'])
    assert teacher is data['inputs']


def test_b2_label_smoothing_loss_is_the_same_on_one_hot_scores():
    """Batch augments make mmpretrain score one-hot labels (gt_score):
    the B2 head's loss is the same as on the plain labels."""
    from mmpretrain.structures import DataSample
    head = dict(load(B2).model.student.head, in_channels=8)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        head = MODELS.build(head)
    torch.manual_seed(0)
    feats = (torch.randn(6, 8), )
    labels = torch.randint(0, 1000, (6, ))
    plain = [DataSample().set_gt_label(int(y)) for y in labels]
    scored = [
        DataSample().set_gt_label(int(y)).set_gt_score(
            torch.nn.functional.one_hot(y, 1000).float()) for y in labels
    ]
    assert torch.allclose(
        head.loss(feats, scored)['loss'],
        head.loss(feats, plain)['loss'])
