"""A step learning-rate decay whose period need not be whole epochs."""
import math

from mmengine.optim.scheduler import StepLR
from mmengine.registry import PARAM_SCHEDULERS


@PARAM_SCHEDULERS.register_module()
class FractionalStepLR(StepLR):
    """``StepLR`` that decays every ``step_size`` steps, ``step_size`` real.

    The seed's stronger strategy multiplies the learning rate by 0.97 every
    2.4 epochs, i.e. every 2.4 * iters_per_epoch iterations, which is not a
    whole number: MMEngine's ``StepLR`` tests ``last_step % step_size == 0``
    and would then never decay. Here the value is decayed whenever
    ``floor(last_step / step_size)`` increases, which equals the closed form
    ``base * gamma ** floor(last_step / step_size)`` of the seed's scheduler.
    Use it with ``by_epoch=True, convert_to_iter_based=True`` and
    ``step_size`` in epochs.
    """

    def __init__(self, optimizer, step_size: float, **kwargs) -> None:
        if not (isinstance(step_size, (int, float)) and step_size > 0):
            raise ValueError('`step_size` should be a positive number, but '
                             f'got {step_size!r}; e.g. 2.4 (epochs).')
        super().__init__(optimizer, step_size=step_size, **kwargs)

    def _get_value(self) -> list:
        values = [
            group[self.param_name] for group in self.optimizer.param_groups
        ]
        if self.last_step == 0:
            return values
        decays = (
            math.floor(self.last_step / self.step_size) - math.floor(
                (self.last_step - 1) / self.step_size))
        return [value * self.gamma**decays for value in values]
