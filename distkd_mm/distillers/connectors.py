"""Trainable adapters applied to a student's tap output before pairing."""
from typing import List, Sequence

from mmengine.registry import MODELS
from torch import Tensor, nn


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'`{name}` should be a positive int, but got '
                         f'{value!r}.')


@MODELS.register_module()
class FPNAdapter(nn.Module):
    """One 1x1 convolution per FPN level, applied to the student's features.

    The "align module" of the DIST "+mimic" detection recipes: the student's
    FPN maps pass through independent trainable 1x1 convs (with bias,
    PyTorch's default init) before the mimic loss compares them with the
    teacher's. It lets the student keep its own feature basis while a cheap
    linear map is asked to match the teacher. Built as a ``connector`` of a
    ``Distiller`` loss entry, it is a student-side module: it trains, syncs
    under DDP and is saved in checkpoints.

    Args:
        in_channels: Channels of the student's FPN maps. Defaults to 256.
        out_channels: Channels of the teacher's FPN maps. Defaults to 256.
        num_levels: Number of FPN outputs (5 for mmdet's RetinaNet and
            Faster R-CNN). Defaults to 5.
    """

    def __init__(self,
                 in_channels: int = 256,
                 out_channels: int = 256,
                 num_levels: int = 5) -> None:
        super().__init__()
        for name, value in (('in_channels', in_channels),
                            ('out_channels', out_channels), ('num_levels',
                                                             num_levels)):
            _check_positive_int(name, value)
        self.convs = nn.ModuleList([
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=True)
            for _ in range(num_levels)
        ])

    def forward(self, feats: Sequence[Tensor]) -> List[Tensor]:
        """Adapt each level with its own conv.

        Args:
            feats: The student's FPN outputs, one (N, C, H, W) map per level.

        Returns:
            The adapted maps, one per level, in the same order.
        """
        is_seq = isinstance(feats, (tuple, list))
        if not is_seq or len(feats) != len(self.convs):
            got = (f'a {type(feats).__name__} of {len(feats)}'
                   if is_seq else type(feats).__name__)
            raise ValueError(
                f'`feats` should be a tuple of {len(self.convs)} FPN maps '
                f'(num_levels), but got {got}. Set `num_levels` to the '
                'number of outputs of the tapped neck.')
        return [conv(x) for conv, x in zip(self.convs, feats)]
