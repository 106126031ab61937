"""Run an mmseg EncoderDecoder teacher for its head logits only."""
from typing import List, Optional

import torch
from mmengine.registry import MODELS
from torch import nn


@MODELS.register_module()
class EncoderDecoderHeads:
    """Teacher forward for mmseg ``EncoderDecoder`` models: every head runs.

    mmseg's ``tensor`` mode (``EncoderDecoder._forward``) runs the backbone,
    neck and decode head only, so a tap on ``auxiliary_head.conv_seg`` would
    never fire on the teacher. This forward runs ``extract_feat``, the decode
    head and every auxiliary head (a single head or a ``ModuleList``),
    called as modules so taps on the heads themselves fire too, and nothing
    else: no targets, no losses, and no
    resize of the logits to the input size, so taps see the heads' own
    output resolution (1/8 of the crop for the dilated ResNets), as in the
    official DIST segmentation code.

    Labels are never read, so the DIST terms include every pixel, also the
    ignore-index (255) and padded ones, as the official code does.

    Use it as ``teacher_forward=dict(type='EncoderDecoderHeads')`` in a
    ``Distiller`` config.
    """

    def attach(self, student: nn.Module, teacher: nn.Module) -> None:
        """Check at build time that the teacher has what this forward uses.

        Args:
            student: The student model (unused).
            teacher: The teacher model.
        """
        for name in ('extract_feat', 'decode_head'):
            if not hasattr(teacher, name):
                raise TypeError(
                    '`teacher` should be an mmseg EncoderDecoder (with '
                    f'`extract_feat` and `decode_head`), but got '
                    f'{type(teacher).__name__}, which has no `{name}`. '
                    'Drop `teacher_forward` for other models.')

    def __call__(self,
                 teacher: nn.Module,
                 inputs: torch.Tensor,
                 data_samples: Optional[list] = None) -> List[torch.Tensor]:
        """Run the teacher's backbone and heads; taps record the outputs.

        Args:
            teacher: The (frozen, eval-mode) EncoderDecoder teacher.
            inputs: The preprocessed batch, (N, 3, H, W).
            data_samples: Unused; the teacher needs no labels.

        Returns:
            The decode head's output followed by each auxiliary head's.
        """
        feats = teacher.extract_feat(inputs)
        outputs = [teacher.decode_head(feats)]
        aux = getattr(teacher, 'auxiliary_head', None)
        if aux is not None:
            heads = aux if isinstance(aux, nn.ModuleList) else [aux]
            outputs += [head(feats) for head in heads]
        return outputs
