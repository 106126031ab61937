"""Guards and schedules around a Distiller run."""
from typing import Dict, Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ..distillers import Distiller


@HOOKS.register_module()
class DistillHook(Hook):
    """Teacher sanity gate, distillation-weight schedule, frozen-teacher guard.

    - Before training, the teacher is evaluated once with the run's own
      validation data and metrics, and the result is logged. A teacher near
      chance level (the classic silently mis-loaded checkpoint) stops the
      run before any compute is spent: below ``min_teacher_score`` when
      given, else, for accuracy metrics, below ``chance_factor`` times
      chance (100 / number of classes).
    - The distillation terms are scaled linearly from 0 to 1 over the first
      ``warmup_iters`` iterations (or ``warmup_epochs`` epochs) and switched
      off from ``stop_epoch`` / ``stop_iter`` on (the teacher then no longer
      runs). With either schedule, the factor is logged as
      ``distill_scale`` every iteration.
    - Every epoch, the teacher must still be frozen, in eval mode and equal
      to the weights it started with.

    Args:
        check_teacher: Evaluate the teacher before training.
        teacher_metric: Metric key to judge; the first one when None.
        min_teacher_score: Fail when the teacher scores below this.
        chance_factor: Without ``min_teacher_score``, fail an accuracy below
            this many times chance.
        max_eval_batches: Evaluate the teacher on at most this many batches.
        warmup_iters: Length of the linear warm-up, in iterations.
        warmup_epochs: Length of the linear warm-up, in epochs.
        stop_iter: First iteration without distillation.
        stop_epoch: First epoch without distillation.
    """

    priority = 'NORMAL'

    def __init__(self,
                 check_teacher: bool = True,
                 teacher_metric: Optional[str] = None,
                 min_teacher_score: Optional[float] = None,
                 chance_factor: float = 2.0,
                 max_eval_batches: Optional[int] = None,
                 warmup_iters: int = 0,
                 warmup_epochs: int = 0,
                 stop_iter: Optional[int] = None,
                 stop_epoch: Optional[int] = None) -> None:
        if warmup_iters and warmup_epochs:
            raise ValueError('`warmup_iters` and `warmup_epochs` should not '
                             f'both be set, but got {warmup_iters} and '
                             f'{warmup_epochs}; keep one.')
        for name, value in dict(
                warmup_iters=warmup_iters,
                warmup_epochs=warmup_epochs,
                stop_iter=stop_iter or 0,
                stop_epoch=stop_epoch or 0).items():
            if not isinstance(value, int) or value < 0:
                raise ValueError(f'`{name}` should be a non-negative int, '
                                 f'but got {value!r}.')
        self.check_teacher = check_teacher
        self.teacher_metric = teacher_metric
        self.min_teacher_score = min_teacher_score
        self.chance_factor = chance_factor
        self.max_eval_batches = max_eval_batches
        self.warmup_iters = warmup_iters
        self.warmup_epochs = warmup_epochs
        self.stop_iter = stop_iter
        self.stop_epoch = stop_epoch
        self._teacher_sum: Optional[float] = None

    @staticmethod
    def distiller(runner) -> Distiller:
        """The run's Distiller, unwrapped from DDP and the like."""
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not isinstance(model, Distiller):
            raise TypeError('DistillHook should be used with a Distiller '
                            f'model, but got {type(model).__name__}; remove '
                            'the hook or wrap the model in a Distiller.')
        return model

    def before_train(self, runner) -> None:
        model = self.distiller(runner)
        self._teacher_sum = _checksum(model.teacher)
        if self.check_teacher:
            metrics = self.evaluate_teacher(runner)
            runner.logger.info(f'Teacher before training: {metrics}')
            self.judge_teacher(metrics, runner)

    def evaluate_teacher(self, runner) -> Dict[str, float]:
        """The teacher's metrics on the run's validation data.

        The teacher predicts on the batches as the student's data
        preprocessor prepares them, which is what it sees in training.
        """
        model = self.distiller(runner)
        loop = runner.val_loop
        was_training = model.training
        model.eval()
        with torch.no_grad():
            for i, batch in enumerate(loop.dataloader):
                if self.max_eval_batches is not None and \
                        i >= self.max_eval_batches:
                    break
                data = model.data_preprocessor(batch, False)
                outputs = model.teacher(**data, mode='predict')
                loop.evaluator.process(data_samples=outputs, data_batch=batch)
            size = len(loop.dataloader.dataset)
            if self.max_eval_batches is not None:
                size = min(size,
                           self.max_eval_batches * loop.dataloader.batch_size)
            metrics = loop.evaluator.evaluate(size)
        model.train(was_training)
        return metrics

    def judge_teacher(self, metrics: Dict[str, float], runner) -> None:
        if not metrics:
            return
        key = self.teacher_metric or next(iter(metrics))
        if key not in metrics:
            raise ValueError(f'`teacher_metric` should be one of '
                             f'{sorted(metrics)}, but got {key!r}.')
        score = float(metrics[key])
        threshold = self.min_teacher_score
        if threshold is None and 'accuracy' in key:
            classes = runner.val_loop.dataloader.dataset.metainfo.get(
                'classes')
            if classes:
                threshold = self.chance_factor * 100.0 / len(classes)
        if threshold is not None and score < threshold:
            raise RuntimeError(
                f'The teacher scores {key}={score:.4g} on the validation '
                f'data, below {threshold:.4g} (near chance): its weights are '
                'probably not loaded (check `teacher_ckpt` and the key '
                'mapping) or it was trained on other classes. Fix the '
                'teacher, or lower `min_teacher_score` in DistillHook.')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None):
        scale = self.scale(runner.iter, runner.epoch, _iters_per_epoch(runner))
        self.distiller(runner).distill_scale = scale
        if self.schedules:
            # The log shows by how much the distillation terms were scaled.
            runner.message_hub.update_scalar('train/distill_scale', scale)

    @property
    def schedules(self) -> bool:
        """Whether a warm-up or a stop scales the distillation terms."""
        return bool(self.warmup_iters or self.warmup_epochs
                    or self.stop_iter is not None
                    or self.stop_epoch is not None)

    def scale(self, iteration: int, epoch: int, iters_per_epoch: int) -> float:
        """The distillation weight factor at this point of training."""
        if self.stop_iter is not None and iteration >= self.stop_iter:
            return 0.0
        if self.stop_epoch is not None and epoch >= self.stop_epoch:
            return 0.0
        warmup = self.warmup_iters or self.warmup_epochs * iters_per_epoch
        if warmup and iteration < warmup:
            return (iteration + 1) / warmup
        return 1.0

    def before_train_epoch(self, runner) -> None:
        self.check_frozen(runner)

    def after_train(self, runner) -> None:
        self.check_frozen(runner)

    def check_frozen(self, runner) -> None:
        """Fail when anything has made the teacher trainable or changed it."""
        teacher = self.distiller(runner).teacher
        problems = []
        if any(p.requires_grad for p in teacher.parameters()):
            problems.append('some teacher parameters require grad')
        if any(m.training for m in teacher.modules()):
            problems.append('some teacher modules are in train mode')
        if self._teacher_sum is not None and \
                _checksum(teacher) != self._teacher_sum:
            problems.append('the teacher weights have changed')
        if problems:
            raise RuntimeError(
                'The teacher should stay frozen, but ' + '; '.join(problems) +
                '. Something (a custom hook, optimizer or paramwise config) '
                'touched it; keep the teacher out of it.')


def _checksum(module: torch.nn.Module) -> float:
    with torch.no_grad():
        return float(
            sum(p.double().sum() for p in module.parameters()) +
            sum(b.double().sum()
                for b in module.buffers() if b.is_floating_point()))


def _iters_per_epoch(runner) -> int:
    try:
        return len(runner.train_dataloader)
    except TypeError:
        return 1
