from .dist_loss import DISTLoss, dist_loss
from .kd_loss import KDLoss

__all__ = ['DISTLoss', 'KDLoss', 'dist_loss']
