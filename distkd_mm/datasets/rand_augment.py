"""The RandAugment of the official DIST classification code.

The seed's stronger training strategy (``dist_b2.yaml``) augments with
``rand-m9-mstd0.5`` of hunto/image_classification_sota
(``lib/dataset/augment_ops.py``), an early timm RandAugment with its own op
pool. It differs from mmpretrain's ``RandAugment`` (and from timm's
current one) in ways that change the images:

* 19 ops, four of them not in timm's pool: Distort (mesh warp), Zoom
  (shrink into a black frame), Blur (Gaussian) and Skew (perspective).
* Magnitudes map to op arguments the *non-increasing* way: at m = 9 the
  enhance ops use the fixed factor 1.72 (not 1 +- 0.81), Solarize the
  threshold 230, PosterizeTpu keeps 3 bits, SolarizeAdd adds 99.
* The magnitude noise (std 0.5) is drawn per op call and not clipped.
* Translations are relative: up to 0.45 x the image side (the
  ``translate_const`` of the seed's hyper-parameters is never read, since
  only the ``Rel`` translations are in the pool).

The behaviour and the numbers follow that file and
``lib/dataset/transform.py`` (fill = ImageNet mean in RGB, bilinear
resampling for the affine ops); the code is ours. The op functions work on
PIL images, as the seed's do, so results match pixel for pixel.
"""
import math
import random
from typing import Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.registry import TRANSFORMS
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

MAX_LEVEL = 10.0
# The seed's pool, in the seed's order (the order matters for op choice
# under a fixed numpy seed).
SEED_OPS = ('Distort', 'Zoom', 'Blur', 'Skew', 'AutoContrast', 'Equalize',
            'Invert', 'Rotate', 'PosterizeTpu', 'Solarize', 'SolarizeAdd',
            'Color', 'Contrast', 'Brightness', 'Sharpness', 'ShearX', 'ShearY',
            'TranslateXRel', 'TranslateYRel')
# ImageNet mean in RGB, rounded, as the seed's `img_mean`.
IMAGENET_FILL = (124, 116, 104)
_INTERPOLATION = {
    'nearest': Image.NEAREST,
    'bilinear': Image.BILINEAR,
    'bicubic': Image.BICUBIC
}


def _maybe_negate(value: float) -> float:
    """Negate with probability 0.5 (same draw as the seed's)."""
    return -value if random.random() > 0.5 else value


def level_to_arg(name: str, level: float) -> tuple:
    """The seed's magnitude -> op argument mapping (non-increasing).

    ``level`` is the (noisy) magnitude on the 0..10 scale. Signed ops draw
    their sign here, as the seed does.
    """
    frac = level / MAX_LEVEL
    if name in ('AutoContrast', 'Equalize', 'Invert'):
        return ()
    if name in ('Color', 'Contrast', 'Brightness', 'Sharpness'):
        return (frac * 1.8 + 0.1, )
    scale = {
        'Rotate': 30.0,
        'ShearX': 0.3,
        'ShearY': 0.3,
        'TranslateXRel': 0.45,
        'TranslateYRel': 0.45,
        'Blur': 0.5,
        'Skew': 0.3,
    }
    if name in scale:
        return (_maybe_negate(frac * scale[name]), )
    integer = {
        'PosterizeTpu': lambda: int(frac * 4),
        'Solarize': lambda: int(frac * 256),
        'SolarizeAdd': lambda: int(frac * 110),
        'Distort': lambda: int(frac * 10 + 10),
    }
    if name in integer:
        return (integer[name](), )
    if name == 'Zoom':
        return (frac * 0.4, )
    raise KeyError(f'`name` should be one of {SEED_OPS}, but got {name!r}.')


def _solarize_add(img: Image.Image,
                  add: int,
                  thresh: int = 128) -> Image.Image:
    lut = [min(255, i + add) if i < thresh else i for i in range(256)]
    return img.point(lut * len(img.getbands()))


def _posterize(img: Image.Image, bits: int) -> Image.Image:
    return img if bits >= 8 else ImageOps.posterize(img, bits)


def distort(img: Image.Image, v: int) -> Image.Image:
    """Mesh warp: a grid of int(v / 10) tiles per side; every inner grid
    point moves by (v, v) px. Below v = 20 the grid is one tile, i.e. an
    identity mesh (only resampled), as in the seed."""
    w, h = img.size
    tiles = int(0.1 * v)
    if tiles < 1:  # only for negative magnitudes, where the seed divides by 0
        return img.copy()
    tw, th = w // tiles, h // tiles
    boxes, quads = [], []
    for row in range(tiles):
        for col in range(tiles):
            x1, y1 = col * tw, row * th
            x2 = w if col == tiles - 1 else x1 + tw
            y2 = h if row == tiles - 1 else y1 + th
            boxes.append((x1, y1, x2, y2))
            # Corners: top-left, bottom-left, bottom-right, top-right.
            quads.append([x1, y1, x1, y2, x2, y2, x2, y1])
    for row in range(tiles - 1):
        for col in range(tiles - 1):
            a = row * tiles + col
            # The inner grid point shared by tiles a, a+1, a+n, a+n+1 is
            # their bottom-right, bottom-left, top-right, top-left corner.
            for tile, corner in ((a, 2), (a + 1, 1), (a + tiles, 3),
                                 (a + tiles + 1, 0)):
                quads[tile][2 * corner] += v
                quads[tile][2 * corner + 1] += v
    mesh = [(box, quad) for box, quad in zip(boxes, quads)]
    return img.transform(img.size, Image.MESH, mesh, resample=Image.BICUBIC)


def zoom(img: Image.Image, v: float) -> Image.Image:
    """Resize by ``v`` (bicubic), then cut the original size around the
    centre; for v < 1 the outside is black (PIL pads crops with 0)."""
    w, h = img.size
    zoomed = img.resize((int(round(w * v)), int(round(h * v))),
                        resample=Image.BICUBIC)
    zw, zh = zoomed.size
    return zoomed.crop(
        (math.floor(zw / 2 - w / 2), math.floor(zh / 2 - h / 2),
         math.floor(zw / 2 + w / 2), math.floor(zh / 2 + h / 2)))


def skew_coefficients(w: int, h: int, v: float) -> np.ndarray:
    """Perspective coefficients that pull the corners out by
    ceil(max(w, h) * v) px (top-left left, top-right up, bottom-right right,
    bottom-left down)."""
    s = int(math.ceil(max(w, h) * v))
    src = [(0, 0), (w, 0), (w, h), (0, h)]
    dst = [(-s, 0), (w, -s), (w + s, h), (0, h + s)]
    rows = []
    for (x, y), (u, t) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -t * x, -t * y])
    a = np.asarray(rows, dtype=np.float64)
    b = np.asarray(src, dtype=np.float64).reshape(8)
    return np.linalg.pinv(a) @ b


def skew(img: Image.Image, v: float) -> Image.Image:
    coeffs = skew_coefficients(*img.size, v)
    return img.transform(
        img.size, Image.PERSPECTIVE, tuple(coeffs), resample=Image.BICUBIC)


def blur(img: Image.Image, v: float) -> Image.Image:
    # The seed passes the signed level as the radius; PIL uses its square.
    return img.filter(ImageFilter.GaussianBlur(abs(v)))


_PLAIN = {
    'AutoContrast': ImageOps.autocontrast,
    'Equalize': ImageOps.equalize,
    'Invert': ImageOps.invert,
}
_ENHANCE = {
    'Color': ImageEnhance.Color,
    'Contrast': ImageEnhance.Contrast,
    'Brightness': ImageEnhance.Brightness,
    'Sharpness': ImageEnhance.Sharpness,
}
_WITH_ARG = {
    'Distort': distort,
    'Zoom': zoom,
    'Blur': blur,
    'Skew': skew,
    'PosterizeTpu': _posterize,
    'Solarize': ImageOps.solarize,
    'SolarizeAdd': _solarize_add,
}


def affine_matrix(name: str, arg: float, w: int, h: int) -> tuple:
    """PIL's output->input affine matrix of the shear/translate ops."""
    if name == 'ShearX':
        return (1, arg, 0, 0, 1, 0)
    if name == 'ShearY':
        return (1, 0, 0, arg, 1, 0)
    if name == 'TranslateXRel':
        return (1, 0, arg * w, 0, 1, 0)
    return (1, 0, 0, 0, 1, arg * h)  # TranslateYRel


def apply_op(img: Image.Image,
             name: str,
             args: tuple,
             fill: Sequence[int] = IMAGENET_FILL,
             interpolation: str = 'bilinear') -> Image.Image:
    """Apply one op of the seed's pool with its already mapped argument."""
    if name in _PLAIN:
        return _PLAIN[name](img)
    (arg, ) = args
    if name in _ENHANCE:
        return _ENHANCE[name](img).enhance(arg)
    if name == 'Rotate':  # always bicubic in the seed's code
        return img.rotate(arg, resample=Image.BICUBIC, fillcolor=tuple(fill))
    if name in _WITH_ARG:
        return _WITH_ARG[name](img, arg)
    return img.transform(
        img.size,
        Image.AFFINE,
        affine_matrix(name, arg, *img.size),
        resample=_INTERPOLATION[interpolation],
        fillcolor=tuple(fill))


@TRANSFORMS.register_module()
class DISTRandAugment(BaseTransform):
    """RandAugment exactly as the official DIST classification code runs it.

    Per image: ``num_ops`` ops drawn uniformly *with replacement* from
    ``ops``; each is applied with probability ``prob`` at a magnitude drawn
    from N(``magnitude``, ``magnitude_std``) (unclipped), mapped to its
    argument by :func:`level_to_arg`. Works on mmpretrain's BGR ``uint8``
    ``results['img']`` (converted to an RGB PIL image and back).

    Defaults are the seed's ``rand-m9-mstd0.5`` with the hyper-parameters of
    its ``build_train_transforms``.

    Args:
        magnitude (float): Mean magnitude on the 0..10 scale. Defaults to 9.
        magnitude_std (float): Std of the per-op magnitude noise; 0 turns
            it off. Defaults to 0.5.
        num_ops (int): Ops per image. Defaults to 2.
        prob (float): Probability that a chosen op is applied. Defaults to
            0.5.
        ops (Sequence[str]): The op pool. Defaults to the seed's 19 ops.
        fill (Sequence[int]): RGB fill of the affine ops and Rotate.
            Defaults to the ImageNet mean (124, 116, 104).
        interpolation (str): Resampling of the shear and translate ops.
            Defaults to ``'bilinear'``.
    """

    def __init__(self,
                 magnitude: float = 9.0,
                 magnitude_std: float = 0.5,
                 num_ops: int = 2,
                 prob: float = 0.5,
                 ops: Sequence[str] = SEED_OPS,
                 fill: Sequence[int] = IMAGENET_FILL,
                 interpolation: str = 'bilinear') -> None:
        unknown = [op for op in ops if op not in SEED_OPS]
        if unknown or not ops:
            raise ValueError(
                f'`ops` should be a non-empty subset of {SEED_OPS}, but got '
                f'{list(ops)!r}; drop {unknown!r}.')
        if interpolation not in _INTERPOLATION:
            raise ValueError(
                f'`interpolation` should be one of {list(_INTERPOLATION)}, '
                f'but got {interpolation!r}.')
        if not 0 <= prob <= 1 or num_ops < 1 or magnitude_std < 0:
            raise ValueError(
                '`prob` should be in [0, 1], `num_ops` >= 1 and '
                f'`magnitude_std` >= 0, but got prob={prob}, '
                f'num_ops={num_ops}, magnitude_std={magnitude_std}.')
        if len(fill) != 3:
            raise ValueError(
                f'`fill` should be an RGB triple, but got {fill!r}.')
        self.magnitude = magnitude
        self.magnitude_std = magnitude_std
        self.num_ops = num_ops
        self.prob = prob
        self.ops = tuple(ops)
        self.fill = tuple(int(c) for c in fill)
        self.interpolation = interpolation

    def sample(self) -> Tuple[Tuple[str, Optional[tuple]], ...]:
        """Draw this image's ops: ``(name, args)``, ``args=None`` when the op
        is skipped. Same draws, in the same order, as the seed."""
        chosen = np.random.choice(len(self.ops), self.num_ops, replace=True)
        plan = []
        for index in chosen:
            name = self.ops[index]
            if random.random() > self.prob:
                plan.append((name, None))
                continue
            level = self.magnitude
            if self.magnitude_std > 0:
                level = random.gauss(level, self.magnitude_std)
            plan.append((name, level_to_arg(name, level)))
        return tuple(plan)

    def transform(self, results: dict) -> dict:
        img = Image.fromarray(np.ascontiguousarray(results['img'][..., ::-1]))
        for name, args in self.sample():
            if args is not None:
                img = apply_op(img, name, args, self.fill, self.interpolation)
        results['img'] = np.ascontiguousarray(np.asarray(img)[..., ::-1])
        results['img_shape'] = results['img'].shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(magnitude={self.magnitude}, '
                f'magnitude_std={self.magnitude_std}, num_ops={self.num_ops}, '
                f'prob={self.prob}, ops={len(self.ops)} ops, '
                f'fill={self.fill}, interpolation={self.interpolation!r})')
