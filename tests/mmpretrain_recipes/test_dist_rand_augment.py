"""DISTRandAugment against the official definitions (image_classification_sota
``lib/dataset/augment_ops.py`` / ``transform.py``), op by op.

The expected numbers below are the official level -> argument formulas
evaluated by hand; the expected images are computed independently (numpy
pixel arithmetic, exact pixel shifts, corner mappings) wherever the op
allows it.
"""
import math
import random
from collections import Counter

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter

from distkd_mm.datasets.rand_augment import (IMAGENET_FILL, SEED_OPS,
                                             DISTRandAugment, apply_op,
                                             level_to_arg, skew_coefficients)

# Official argument at magnitude 9 (no noise), sign taken as positive.
AT_M9 = {
    'Rotate': 27.0,
    'ShearX': 0.27,
    'ShearY': 0.27,
    'TranslateXRel': 0.405,
    'TranslateYRel': 0.405,
    'Color': 1.72,
    'Contrast': 1.72,
    'Brightness': 1.72,
    'Sharpness': 1.72,
    'PosterizeTpu': 3,
    'Solarize': 230,
    'SolarizeAdd': 99,
    'Distort': 19,
    'Zoom': 0.36,
    'Blur': 0.45,
    'Skew': 0.27,
}


def image(h: int = 64, w: int = 80, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img).astype(np.int32)


def test_pool_is_the_official_19_ops():
    assert len(SEED_OPS) == 19
    for extra in ('Distort', 'Zoom', 'Blur', 'Skew', 'Invert', 'PosterizeTpu',
                  'SolarizeAdd', 'TranslateXRel'):
        assert extra in SEED_OPS
    # timm's absolute translations and other posterize variants are not.
    assert 'TranslateX' not in SEED_OPS and 'Posterize' not in SEED_OPS


@pytest.mark.parametrize('name', sorted(AT_M9))
def test_magnitude_9_maps_to_the_official_argument(name):
    random.seed(0)
    for _ in range(20):
        assert abs(level_to_arg(name, 9.0)[0]) == pytest.approx(AT_M9[name])


def test_non_increasing_mapping_at_other_magnitudes():
    assert level_to_arg('Brightness', 5.0) == (pytest.approx(1.0), )
    assert level_to_arg('Brightness', 10.0) == (pytest.approx(1.9), )
    assert level_to_arg('Brightness', 0.0) == (pytest.approx(0.1), )
    assert level_to_arg('Solarize', 5.0) == (128, )
    assert level_to_arg('Solarize', 10.0) == (256, )
    assert level_to_arg('PosterizeTpu', 10.0) == (4, )
    assert level_to_arg('PosterizeTpu', 7.4) == (2, )
    assert level_to_arg('Distort', 10.0) == (20, )
    for name in ('AutoContrast', 'Equalize', 'Invert'):
        assert level_to_arg(name, 9.0) == ()


def test_signed_ops_draw_both_signs():
    random.seed(1)
    signs = {
        math.copysign(1,
                      level_to_arg('Rotate', 9.0)[0])
        for _ in range(50)
    }
    assert signs == {-1.0, 1.0}


def test_pixel_ops_at_magnitude_9():
    img = image()
    x = arr(img)
    np.testing.assert_array_equal(
        arr(apply_op(img, 'Solarize', (230, ))),
        np.where(x >= 230, 255 - x, x))
    np.testing.assert_array_equal(
        arr(apply_op(img, 'PosterizeTpu', (3, ))), x & 0b11100000)
    np.testing.assert_array_equal(
        arr(apply_op(img, 'SolarizeAdd', (99, ))),
        np.where(x < 128, np.minimum(255, x + 99), x))
    np.testing.assert_array_equal(arr(apply_op(img, 'Invert', ())), 255 - x)
    # Brightness blends with black: x * 1.72, clipped.
    bright = arr(apply_op(img, 'Brightness', (1.72, )))
    assert np.abs(bright - np.clip(x * 1.72, 0, 255)).max() <= 1
    # Colour blends with the ITU-R 601-2 grey image.
    grey = (x[..., 0] * 299 + x[..., 1] * 587 + x[..., 2] * 114) / 1000
    colour = grey[..., None] + 1.72 * (x - grey[..., None])
    assert np.abs(
        arr(apply_op(img, 'Color', (1.72, ))) -
        np.clip(colour, 0, 255)).max() <= 2
    # Contrast blends with the mean grey level.
    mean = int(grey.mean() + 0.5)
    contrast = np.clip(mean + 1.72 * (x - mean), 0, 255)
    assert np.abs(arr(apply_op(img, 'Contrast', (1.72, ))) -
                  contrast).max() <= 2
    np.testing.assert_array_equal(
        arr(apply_op(img, 'Sharpness', (1.72, ))),
        arr(ImageEnhance.Sharpness(img).enhance(1.72)))


def test_autocontrast_and_equalize():
    rng = np.random.default_rng(0)
    x = rng.integers(50, 151, (32, 32, 3), dtype=np.uint8)
    out = arr(apply_op(Image.fromarray(x), 'AutoContrast', ()))
    lo, hi = x.min((0, 1)), x.max((0, 1))
    expected = (x.astype(np.float64) - lo) * 255 / (hi - lo)
    assert np.abs(out - expected).max() <= 1
    eq = arr(apply_op(Image.fromarray(x), 'Equalize', ()))
    assert eq.min() <= 10 and eq.max() == 255  # spread over the full range


def test_translate_and_shear_move_by_the_official_amount():
    img = image(200, 200)
    x = arr(img)
    fill = np.array(IMAGENET_FILL)
    # 0.405 x 200 = 81 px: output column c reads input column c + 81.
    out = arr(apply_op(img, 'TranslateXRel', (0.405, )))
    np.testing.assert_array_equal(out[:, :119], x[:, 81:])
    assert (out[:, 120:] == fill).all()
    out = arr(apply_op(img, 'TranslateYRel', (-0.405, )))
    np.testing.assert_array_equal(out[81:], x[:119])
    assert (out[:80] == fill).all()
    # Shear 0.27: output pixel centre (c, r) reads input point
    # (c + 0.27 r, r) for ShearX; on a linear ramp bilinear sampling
    # returns the ramp's value there.
    ramp = np.zeros((200, 200, 3), np.uint8)
    ramp[..., 0] = np.arange(200)[None, :]  # R = column
    ramp[..., 1] = np.arange(200)[:, None]  # G = row
    out = arr(apply_op(Image.fromarray(ramp), 'ShearX', (0.27, )))
    for row in (10, 100, 150):
        shift = 0.27 * (row + 0.5)
        np.testing.assert_allclose(
            out[row, :100, 0], np.arange(100) + shift, atol=1)
    out = arr(apply_op(Image.fromarray(ramp), 'ShearY', (-0.27, )))
    for col in (50, 120, 199):
        shift = -0.27 * (col + 0.5)
        np.testing.assert_allclose(
            out[100:180, col, 1], np.arange(100, 180) + shift, atol=1)


def test_rotate_is_bicubic_about_the_centre_with_the_mean_fill():
    h = w = 101
    x = np.zeros((h, w, 3), np.uint8)
    x[48:53, 78:83] = 255  # a dot 30 px right of the centre (50, 50)
    out = arr(apply_op(Image.fromarray(x), 'Rotate', (27.0, )))
    assert (out[0, 0] == IMAGENET_FILL).all()
    assert (out[-1, -1] == IMAGENET_FILL).all()
    # PIL rotates counter-clockwise: the dot moves up.
    ys, xs = np.nonzero(out[..., 0] > 128)
    assert xs.mean() == pytest.approx(
        50 + 30 * math.cos(math.radians(27)), abs=1)
    assert ys.mean() == pytest.approx(
        50 - 30 * math.sin(math.radians(27)), abs=1)


def test_zoom_shrinks_into_a_black_frame():
    img = image(100, 100)
    out = arr(apply_op(img, 'Zoom', (0.36, )))
    assert out.shape == (100, 100, 3)
    small = arr(img.resize((36, 36), Image.BICUBIC))
    np.testing.assert_array_equal(out[32:68, 32:68], small)
    assert (out[:32] == 0).all() and (out[68:] == 0).all()
    assert (out[:, :32] == 0).all() and (out[:, 68:] == 0).all()


def test_blur_radius_and_sign():
    img = image()
    expected = arr(img.filter(ImageFilter.GaussianBlur(0.45)))
    np.testing.assert_array_equal(
        arr(apply_op(img, 'Blur', (0.45, ))), expected)
    np.testing.assert_array_equal(
        arr(apply_op(img, 'Blur', (-0.45, ))), expected)


def test_skew_pulls_each_corner_out_by_ceil_of_v_times_the_side():
    w, h, v = 100, 80, 0.27
    s = math.ceil(100 * v)
    a, b, c, d, e, f, g, k = skew_coefficients(w, h, v)
    src = [(0, 0), (w, 0), (w, h), (0, h)]
    dst = [(-s, 0), (w, -s), (w + s, h), (0, h + s)]
    for (x, y), (u, t) in zip(dst, src):
        den = g * x + k * y + 1
        assert (a * x + b * y + c) / den == pytest.approx(u, abs=1e-6)
        assert (d * x + e * y + f) / den == pytest.approx(t, abs=1e-6)
    out = arr(apply_op(image(h, w), 'Skew', (v, )))
    assert out.shape == (h, w, 3)


def test_distort_identity_below_20_and_warp_at_20():
    img = image(64, 64)
    same = arr(apply_op(img, 'Distort', (19, )))
    assert np.abs(same - arr(img)).mean() < 1
    # A coordinate image: R = column, G = row. At v = 20 the inner grid
    # point (32, 32) of the 2x2 mesh reads input point (52, 52).
    yy, xx = np.mgrid[:64, :64]
    coords = np.stack([xx * 4, yy * 4, np.zeros_like(xx)], -1)
    out = arr(
        apply_op(Image.fromarray(coords.astype(np.uint8)), 'Distort', (20, )))
    assert out[31, 31, 0] == pytest.approx(51 * 4, abs=8)
    assert out[31, 31, 1] == pytest.approx(51 * 4, abs=8)
    assert out[0, 0, 0] == pytest.approx(0, abs=4)  # outer corners stay


def test_sampling_is_the_official_policy():
    aug = DISTRandAugment()
    random.seed(0)
    np.random.seed(0)
    ops, applied, levels, same = Counter(), 0, [], 0
    n = 6000
    for _ in range(n):
        plan = aug.sample()
        assert len(plan) == 2
        same += plan[0][0] == plan[1][0]
        for name, args in plan:
            ops[name] += 1
            applied += args is not None
            if name == 'Rotate' and args is not None:
                levels.append(abs(args[0]) / 3)
    assert set(ops) == set(SEED_OPS)
    for name in SEED_OPS:  # uniform choice, 2n draws
        assert ops[name] / (2 * n) == pytest.approx(1 / 19, abs=0.012)
    assert applied / (2 * n) == pytest.approx(0.5, abs=0.02)
    assert same / n == pytest.approx(1 / 19, abs=0.012)  # with replacement
    assert np.mean(levels) == pytest.approx(9, abs=0.1)
    assert np.std(levels) == pytest.approx(0.5, abs=0.08)


def test_transform_works_on_bgr_results():
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    invert = DISTRandAugment(ops=('Invert', ), num_ops=1, prob=1.0)
    out = invert.transform(dict(img=bgr.copy()))
    np.testing.assert_array_equal(out['img'], 255 - bgr)
    rotate = DISTRandAugment(ops=('Rotate', ), num_ops=1, prob=1.0)
    out = rotate.transform(dict(img=bgr.copy()))
    # The RGB fill comes back in BGR order.
    assert tuple(out['img'][0, 0]) == IMAGENET_FILL[::-1]
    assert out['img_shape'] == (40, 48)


@pytest.mark.parametrize('kwargs,match', [
    (dict(ops=('Rotate', 'Cutout')), '`ops`'),
    (dict(interpolation='area'), '`interpolation`'),
    (dict(prob=1.5), '`prob`'),
    (dict(fill=(1, 2)), '`fill`'),
])
def test_bad_arguments_fail_early(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DISTRandAugment(**kwargs)
