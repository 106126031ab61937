from .checkpoint import (allow_openmmlab_checkpoints, install_safe_loading,
                         load_untrusted, load_weights)

__all__ = [
    'allow_openmmlab_checkpoints', 'install_safe_loading', 'load_untrusted',
    'load_weights'
]
