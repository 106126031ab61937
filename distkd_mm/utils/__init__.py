from .checkpoint import (allow_openmmlab_checkpoints, load_untrusted,
                         load_weights)

__all__ = ['allow_openmmlab_checkpoints', 'load_untrusted', 'load_weights']
