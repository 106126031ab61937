from .dist_loss import DISTLoss, dist_loss
from .kd_loss import KDLoss
from .lean_dist import lean_dist_loss
from .mimic_loss import MimicLoss

__all__ = ['DISTLoss', 'KDLoss', 'MimicLoss', 'dist_loss', 'lean_dist_loss']
