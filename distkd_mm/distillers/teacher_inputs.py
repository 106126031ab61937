"""The teacher's own preprocessing, derived from the student's batch.

The student's data preprocessor turned the raw images into its batch:
channel order, then ``(x - mean) / std``, then padding. A teacher trained
with other settings (BGR instead of RGB, another mean/std) scores near
chance on that batch. Each of these steps is invertible per channel, so
the batch the teacher's own preprocessor would have made from the same raw
images is one affine map per channel, and perhaps a channel flip, of the
student's: ``t = a * P(s) + b`` with ``a = P(std_s) / std_t`` and
``b = (P(mean_s) - mean_t) / std_t``. Padding is made after normalisation
by all three libraries, so the padded pixels are mapped too, and then set
to the teacher's pad value where it differs. What cannot be derived
exactly (another padding divisor or size) is refused when the model is
built.
"""
import logging
from typing import List, NamedTuple, Optional, Tuple

import torch
from mmengine.logging import print_log
from torch import nn

# Distiller(teacher_preprocess=...): how the teacher gets its batch.
MODES = ('own', 'normalize_only', 'student')
_SWITCH = ('set `model.teacher_preprocess="normalize_only"` to derive mean, '
           'std and channel order and accept the student\'s padding and '
           'size, or "student" to give the teacher the student\'s batch as '
           'it is')


class Preprocessing(NamedTuple):
    """What an image data preprocessor does, in the terms that matter."""
    name: str
    swap: bool  # flips the channel order of 3-channel images
    mean: Optional[List[float]]
    std: Optional[List[float]]
    pad_value: float
    geometry: Tuple  # what decides the padded batch size
    batch_augments: bool


def describe(pre: nn.Module) -> Optional[Preprocessing]:
    """Read an mmengine/mmpretrain/mmdet/mmseg image preprocessor; None
    for one whose steps are not known here."""
    name = type(pre).__name__
    if not hasattr(pre, '_enable_normalize'):
        return None
    if hasattr(pre, 'channel_conversion'):  # mmseg
        swap = pre.channel_conversion
        pad = pre.pad_val
        size = tuple(pre.size) if pre.size is not None else None
        geometry = ('size', size, 'size_divisor', pre.size_divisor)
    elif hasattr(pre, 'pad_size_divisor'):
        # mmengine ImgDataPreprocessor (mmdet's) or mmpretrain's.
        swap = getattr(pre, '_channel_conversion',
                       getattr(pre, 'to_rgb', None))
        if swap is None:
            return None
        pad = pre.pad_value
        geometry = ('pad_size_divisor', pre.pad_size_divisor)
    else:
        return None
    normalize = bool(pre._enable_normalize)
    return Preprocessing(
        name=name,
        swap=bool(swap),
        mean=pre.mean.flatten().tolist() if normalize else None,
        std=pre.std.flatten().tolist() if normalize else None,
        pad_value=float(pad),
        geometry=geometry,
        batch_augments=getattr(pre, 'batch_augments', None) is not None)


class TeacherInputs:
    """Maps the student's batch to the teacher's, on the batch's device.

    Args:
        student: The student's data preprocessor.
        teacher: The teacher's data preprocessor.
        mode: ``'own'`` derives the teacher's batch and refuses what
            cannot be derived exactly; ``'normalize_only'`` derives channel
            order and mean/std but accepts the student's padding and size;
            ``'student'`` gives the teacher the student's batch as it is.
        given: Whether the teacher's config names a data preprocessor;
            without one the teacher takes the student's batch.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, mode: str,
                 given: bool) -> None:
        self.identity = True
        self._cache: dict = {}
        if mode == 'student' or not given:
            why = ('`teacher_preprocess="student"`' if mode == 'student' else
                   "the teacher's config has no `data_preprocessor`")
            _log(f'distkd_mm: the teacher gets the student\'s batch as it '
                 f'is ({why}).')
            return
        s, t = describe(student), describe(teacher)
        for side, desc, pre in (('student', s, student), ('teacher', t,
                                                          teacher)):
            if desc is None:
                raise ValueError(
                    f'The {side}\'s data preprocessor should be one whose '
                    'steps are known (mmengine ImgDataPreprocessor, mmdet '
                    'DetDataPreprocessor, mmpretrain ClsDataPreprocessor, '
                    f'mmseg SegDataPreProcessor), but got '
                    f'{type(pre).__name__}, so the teacher\'s inputs cannot '
                    f'be derived from the student\'s; {_SWITCH}.')
        if mode == 'own' and s.geometry != t.geometry:
            raise ValueError(
                '`teacher_preprocess="own"`: the teacher\'s padding should '
                f'equal the student\'s, but the student pads with '
                f'{_geometry(s)} and the teacher with {_geometry(t)}: the '
                'teacher\'s own batch would have another size. Align '
                '`model.teacher.data_preprocessor` with the student\'s, or '
                f'{_SWITCH}.')
        self.student, self.teacher = s, t
        self.identity = (s.swap, s.mean, s.std,
                         s.pad_value) == (t.swap, t.mean, t.std, t.pad_value)
        self.repad = not self.identity and mode == 'own' and any(
            abs(v - t.pad_value) > 1e-5 for v in self._mapped_pad())
        # Batch augments (mixup, cutmix, a fixed-size pad) move padded
        # pixels, so they cannot be found again to repad; a batch of
        # equal-sized images without a pad divisor has none to move.
        self._augmented_pad = self.repad and s.batch_augments
        if self._augmented_pad and s.geometry != ('pad_size_divisor', 1):
            raise ValueError(self._augmented_pad_error())
        _log('distkd_mm: teacher inputs: ' + self.describe_mapping())

    def _augmented_pad_error(self) -> str:
        s, t = self.student, self.teacher
        return ('The teacher\'s inputs cannot be derived exactly: the '
                f'student pads with {s.pad_value} (the teacher\'s '
                f'{t.pad_value} maps to another value) and its batch '
                'augments move padded pixels. Give both preprocessors pad '
                f'values that map onto each other, or {_SWITCH}.')

    def describe_mapping(self) -> str:
        """The mapping in one line, for the log."""
        if self.identity:
            return "the student's batch (same preprocessing)"
        s, t = self.student, self.teacher
        flip = ', channel order flipped' if s.swap != t.swap else ''
        scale, shift = self._coefficients(3 if s.mean is None else len(s.mean))
        return (f'derived from the student\'s ({s.name} mean='
                f'{_fmt(s.mean)} std={_fmt(s.std)} -> {t.name} mean='
                f'{_fmt(t.mean)} std={_fmt(t.std)}{flip}): '
                f'x * {_fmt(scale)} + {_fmt(shift)} per channel' +
                ('; padded pixels set to the teacher\'s pad value '
                 f'{t.pad_value}' if self.repad else ''))

    def __call__(self, inputs: torch.Tensor,
                 data_samples: Optional[list]) -> torch.Tensor:
        if self.identity or not isinstance(inputs, torch.Tensor):
            return inputs
        channels = inputs.size(1)
        key = (inputs.device, channels)
        if key not in self._cache:
            scale, shift = self._coefficients(channels)
            shape = (1, channels) + (1, ) * (inputs.dim() - 2)
            self._cache[key] = tuple(
                torch.tensor(v, device=inputs.device).reshape(shape)
                for v in (scale, shift))
        scale, shift = self._cache[key]
        if channels == 3 and self.student.swap != self.teacher.swap:
            inputs = inputs.flip(1)
        out = torch.addcmul(shift, inputs.float(), scale)
        if self._augmented_pad and _padded(out, data_samples):
            raise RuntimeError(self._augmented_pad_error())
        if self.repad:
            # Without padding to a divisor, a batch of equal-sized images
            # (every classification training pipeline) has no padding.
            _repad(out, data_samples, self.teacher.pad_value,
                   self.student.geometry != ('pad_size_divisor', 1))
        return out

    def _coefficients(self, channels: int) -> Tuple[List[float], ...]:
        s, t = self.student, self.teacher
        s_mean, s_std = _vector(s.mean, 0.,
                                channels), _vector(s.std, 1., channels)
        t_mean, t_std = _vector(t.mean, 0.,
                                channels), _vector(t.std, 1., channels)
        if channels == 3 and s.swap != t.swap:
            s_mean, s_std = s_mean[::-1], s_std[::-1]
        scale = [a / b for a, b in zip(s_std, t_std)]
        shift = [(m - n) / b for m, n, b in zip(s_mean, t_mean, t_std)]
        return scale, shift

    def _mapped_pad(self) -> List[float]:
        scale, shift = self._coefficients(3)
        return [self.student.pad_value * a + b for a, b in zip(scale, shift)]


def _padded(out: torch.Tensor, data_samples: Optional[list]) -> bool:
    """Whether an image of the batch is smaller than the batch."""
    size = tuple(out.shape[-2:])
    return any(
        tuple(getattr(sample, 'metainfo', {}).get('img_shape', size)[:2]) !=
        size for sample in data_samples or [])


def _repad(out: torch.Tensor, data_samples: Optional[list], value: float,
           need_shapes: bool) -> None:
    """Set the padded pixels (right and bottom of each image, as the
    libraries pad) to the teacher's pad value."""
    height, width = out.shape[-2:]
    for i, sample in enumerate(data_samples or []):
        shape = getattr(sample, 'metainfo', {}).get('img_shape')
        if shape is None and not need_shapes:
            continue
        if shape is None:
            raise RuntimeError(
                'The teacher\'s inputs need each sample\'s `img_shape` to '
                'find the padded pixels (the two preprocessors pad with '
                'values that do not map onto each other), but a data sample '
                f'has none; keep `img_shape` in PackInputs\' meta_keys, or '
                f'{_SWITCH}.')
        h, w = shape[:2]
        if h < height:
            out[i, :, h:] = value
        if w < width:
            out[i, :, :, w:] = value


def _vector(values: Optional[List[float]], default: float,
            channels: int) -> List[float]:
    if values is None:
        return [default] * channels
    if len(values) == 1:
        return list(values) * channels
    if len(values) != channels:
        raise ValueError(f'The data preprocessor\'s mean/std should have '
                         f'one value per channel ({channels}), but got '
                         f'{values}.')
    return list(values)


def _geometry(desc: Preprocessing) -> str:
    keys = desc.geometry[::2]
    values = desc.geometry[1::2]
    return ', '.join(f'{k}={v}' for k, v in zip(keys, values)) + \
        f' ({desc.name})'


def _fmt(values: Optional[List[float]]) -> str:
    if values is None:
        return 'None'
    return '[' + ', '.join(f'{v:.4g}' for v in values) + ']'


def _log(message: str) -> None:
    print_log(message, logger='current', level=logging.INFO)
