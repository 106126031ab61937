from .checkpoint import (CorruptCheckpointError, load_untrusted,
                         resuming_own_checkpoint)
from .import_effects import apply_import_effects
from .weights import load_weights

__all__ = [
    'CorruptCheckpointError', 'apply_import_effects', 'load_untrusted',
    'load_weights', 'resuming_own_checkpoint'
]
