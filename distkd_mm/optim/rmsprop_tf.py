"""timm's TensorFlow-style RMSprop, registered in MMEngine's OPTIMIZERS."""
from typing import Iterable

from mmengine.registry import OPTIMIZERS
from torch.optim import Optimizer


@OPTIMIZERS.register_module(name='RMSpropTF')
def build_rmsprop_tf(params: Iterable, **kwargs) -> Optimizer:
    """Build ``timm.optim.RMSpropTF`` (the seed's ``rmsproptf``).

    It differs from ``torch.optim.RMSprop`` as TensorFlow's does: epsilon
    inside the square root, the square average initialised to one, and the
    learning rate applied inside the momentum buffer. timm is imported only
    here, so the rest of the package works without it.

    Args:
        params: Parameters or parameter groups (MMEngine passes them).
        **kwargs: ``lr``, ``alpha``, ``eps``, ``weight_decay``,
            ``momentum``, ... of ``timm.optim.RMSpropTF``.
    """
    try:
        from timm.optim import RMSpropTF
    except ImportError:
        raise ImportError(
            '`RMSpropTF` needs timm, which is not installed; '
            'run `pip install timm` (see requirements.txt).') from None
    return RMSpropTF(params, **kwargs)
