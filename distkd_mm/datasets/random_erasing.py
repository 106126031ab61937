"""Random erasing of the seed's stronger training strategy.

The seed (``dist_b2.yaml`` of hunto/image_classification_sota) erases with
timm's ``RandomErasing(0.2, mode='pixel')`` on the GPU, on the batch the
model takes, i.e. **after** normalisation: each image, with probability
0.2, gets one box filled with per-pixel, per-channel N(0, 1) noise,
unclipped. Done before normalisation (mmpretrain's ``RandomErasing`` on
uint8 images) the noise is clipped to 0..255 and rounded, which narrows it
(std 0.973 instead of 1.00 in normalised units) and changes its shape.

:class:`DISTRandomErasing` is an mmpretrain batch augmentation: it runs in
``ClsDataPreprocessor`` right after normalisation, configured through the
student's ``train_cfg``::

    model = dict(student=dict(train_cfg=dict(augments=dict(
        type='DISTRandomErasing', prob=0.2))))

The box sampling follows timm's description (area fraction uniform in
``[min_area_ratio, max_area_ratio]``, log-uniform aspect ratio, up to
``max_attempts`` draws until the box fits, top-left corner uniform); the
code is ours. The draws come from Python's ``random`` (as the seed's) and
the noise from torch's generator on the batch's device, so MMEngine's
``randomness.seed`` makes a run repeatable.
"""
import math
import random
from typing import Optional, Tuple

import torch
from mmpretrain.registry import BATCH_AUGMENTS

Box = Tuple[int, int, int, int]  # top, left, height, width


@BATCH_AUGMENTS.register_module()
class DISTRandomErasing:
    """Erase one box per image with N(0, 1) noise, after normalisation.

    Each image of the batch is erased with probability ``prob``. Its box
    has an area of ``a * H * W`` with ``a ~ U(min_area_ratio,
    max_area_ratio)`` and an aspect ratio (height / width) ``r`` with
    ``log r ~ U(log min_aspect_ratio, log max_aspect_ratio)``; height
    ``round(sqrt(a H W r))`` and width ``round(sqrt(a H W / r))``. A box
    that is not strictly smaller than the image is drawn again, up to
    ``max_attempts`` times, after which the image is left as it is (the
    seed's rule). Every channel of every pixel in the box gets its own
    N(0, 1) value, unclipped; the other pixels are unchanged. The labels
    pass through unchanged.

    Defaults are the seed's: timm's ``RandomErasing`` defaults with its
    ``reprob=0.2``, one box (``recount=1``).

    Args:
        prob (float): Probability that an image is erased. Defaults to 0.2.
        min_area_ratio (float): Smallest box area, as a fraction of the
            image. Defaults to 0.02.
        max_area_ratio (float): Largest box area fraction. Defaults to 1/3.
        min_aspect_ratio (float): Smallest height / width of the box.
            Defaults to 0.3.
        max_aspect_ratio (float, optional): Largest height / width; None
            means ``1 / min_aspect_ratio``. Defaults to None.
        max_attempts (int): Box draws before an image is left unerased.
            Defaults to 10.
    """

    def __init__(self,
                 prob: float = 0.2,
                 min_area_ratio: float = 0.02,
                 max_area_ratio: float = 1 / 3,
                 min_aspect_ratio: float = 0.3,
                 max_aspect_ratio: Optional[float] = None,
                 max_attempts: int = 10) -> None:
        if max_aspect_ratio is None:
            max_aspect_ratio = 1 / min_aspect_ratio if \
                min_aspect_ratio > 0 else min_aspect_ratio
        if not 0 <= prob <= 1:
            raise ValueError(
                f'`prob` should be in [0, 1], but got {prob}; it is the '
                'probability that an image is erased (the seed: 0.2).')
        if not 0 < min_area_ratio <= max_area_ratio <= 1:
            raise ValueError(
                '`min_area_ratio` and `max_area_ratio` should satisfy 0 < '
                'min <= max <= 1, but got '
                f'{min_area_ratio} and {max_area_ratio}; they are fractions '
                'of the image area (the seed: 0.02 and 1/3).')
        if not 0 < min_aspect_ratio <= max_aspect_ratio:
            raise ValueError(
                '`min_aspect_ratio` and `max_aspect_ratio` should satisfy '
                f'0 < min <= max, but got {min_aspect_ratio} and '
                f'{max_aspect_ratio}; they bound height / width (the seed: '
                '0.3 and 1/0.3).')
        if not isinstance(max_attempts, int) or max_attempts < 1:
            raise ValueError('`max_attempts` should be an int >= 1, but got '
                             f'{max_attempts!r} (the seed: 10).')
        self.prob = prob
        self.min_area_ratio = min_area_ratio
        self.max_area_ratio = max_area_ratio
        self.log_aspect_range = (math.log(min_aspect_ratio),
                                 math.log(max_aspect_ratio))
        self.max_attempts = max_attempts

    def sample_box(self, height: int, width: int) -> Optional[Box]:
        """Draw one image's box, or None when it is not erased.

        The draws are made in the seed's order: the erase decision, then
        per attempt area, aspect ratio, and (for a box that fits) top and
        left.
        """
        if random.random() >= self.prob:
            return None
        area = height * width
        for _ in range(self.max_attempts):
            target = random.uniform(self.min_area_ratio,
                                    self.max_area_ratio) * area
            aspect = math.exp(random.uniform(*self.log_aspect_range))
            h = int(round(math.sqrt(target * aspect)))
            w = int(round(math.sqrt(target / aspect)))
            if h < height and w < width:
                top = random.randint(0, height - h)
                left = random.randint(0, width - w)
                return top, left, h, w
        return None

    def __call__(self, inputs: torch.Tensor,
                 batch_score: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Erase the normalised batch ``inputs`` (N, C, H, W).

        Returns a new tensor where any image is erased (the caller's tensor
        is left as it is) and ``batch_score`` unchanged.
        """
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4:
            shape = tuple(getattr(inputs, 'shape', ())) or type(inputs)
            raise ValueError(
                '`inputs` should be a batch of images (N, C, H, W), but got '
                f'{shape}; use DISTRandomErasing in ClsDataPreprocessor\'s '
                '`batch_augments` (the classifier\'s `train_cfg.augments`).')
        num, channels, height, width = inputs.shape
        out = inputs
        for i in range(num):
            box = self.sample_box(height, width)
            if box is None:
                continue
            if out is inputs:
                out = inputs.clone()
            top, left, h, w = box
            out[i, :, top:top + h, left:left + w] = torch.randn(
                (channels, h, w), dtype=inputs.dtype, device=inputs.device)
        return out, batch_score

    def __repr__(self) -> str:
        low, high = (math.exp(v) for v in self.log_aspect_range)
        return (f'{self.__class__.__name__}(prob={self.prob}, '
                f'area_ratio=({self.min_area_ratio:.4g}, '
                f'{self.max_area_ratio:.4g}), aspect_ratio=({low:.4g}, '
                f'{high:.4g}), max_attempts={self.max_attempts})')
