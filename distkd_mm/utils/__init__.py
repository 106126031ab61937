from .checkpoint import (CorruptCheckpointError, load_untrusted,
                         resuming_own_checkpoint)
from .weights import load_weights

__all__ = [
    'CorruptCheckpointError', 'load_untrusted', 'load_weights',
    'resuming_own_checkpoint'
]
