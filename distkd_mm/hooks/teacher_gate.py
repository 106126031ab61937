"""The teacher sanity gate: score the teacher before the first step.

A teacher whose checkpoint is missing, wrong or read with the wrong key
mapping, or that sees other preprocessing or another class order than it
was trained with, predicts no better than chance, and DIST against it trains
the student on noise for the whole run with exit code 0. The gate scores the
teacher on a few validation batches before training and stops such a run.

Every shipped config and every ``tools/train.py --teacher`` run has it, as
``default_hooks.teacher_gate`` (a named entry, so ``--cfg-options`` can tune
it or switch it off: ``default_hooks.teacher_gate.max_eval_batches=2``,
``default_hooks.teacher_gate.enable=False``).
"""
import time
from typing import Dict, Optional, Sequence

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ..distillers import Distiller

# The metric judged when `teacher_metric` is not given: the first of the
# run's metrics whose name ends with one of these (in this order), else the
# first metric. mmseg's first metric is pixel accuracy (`aAcc`), which a
# model predicting the most frequent class everywhere scores high on.
PREFERRED_METRICS = ('accuracy/top1', 'mIoU', 'bbox_mAP', 'segm_mAP', 'mAP')
# COCO/VOC-style mAP (0..1) has no chance level in 100 / classes: boxes
# placed without looking at the image match almost nothing, so a random
# teacher scores ~0.000 while a model-zoo teacher scores 0.2-0.6 even on a
# handful of images. Below this floor (1 mAP point) the gate fails.
MAP_FLOOR = 0.01


@HOOKS.register_module()
class TeacherGateHook(Hook):
    """Evaluate the teacher before training; stop a teacher near chance.

    The teacher predicts on ``max_eval_batches`` batches of the run's own
    validation dataloader, as it does in training: the student's data
    preprocessor, then :meth:`Distiller.teacher_inputs` (the teacher's own
    preprocessing derived from the student's batch). The run's validation
    metrics score it. The rule, in this order:

    - ``min_teacher_score`` when given;
    - accuracy (``accuracy/top1``) and mIoU: fail below ``chance_factor``
      times chance, 100 / number of classes (a prediction that does not
      depend on the image scores at most about that much mIoU too);
    - mAP: fail below :data:`MAP_FLOOR` (0.01, i.e. 1 mAP point);
    - any other metric: logged, not judged (a warning says so).

    The cost is logged: the gate's seconds and how many training
    iterations they equal (the run's second iteration is timed).

    Args:
        enable: Run the gate. ``False`` (e.g. ``--cfg-options
            default_hooks.teacher_gate.enable=False``) skips it.
        max_eval_batches: Evaluate on at most this many validation batches
            (per process); ``None`` for the whole validation set.
        teacher_metric: The metric to judge; see the rule above when None.
        min_teacher_score: Fail when the teacher scores below this (in the
            metric's own units), instead of the rule above.
        chance_factor: How many times chance an accuracy or mIoU must reach.
        fix: What to do about a failing teacher, appended to the error
            (e.g. the command that trains the demo's teacher).
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 enable: bool = True,
                 max_eval_batches: Optional[int] = 10,
                 teacher_metric: Optional[str] = None,
                 min_teacher_score: Optional[float] = None,
                 chance_factor: float = 2.0,
                 fix: Optional[str] = None) -> None:
        if not isinstance(enable, bool):
            raise TypeError(f'`enable` should be True or False, but got '
                            f'{enable!r}.')
        if max_eval_batches is not None and (
                not isinstance(max_eval_batches, int)
                or isinstance(max_eval_batches, bool) or max_eval_batches < 1):
            raise ValueError('`max_eval_batches` should be a positive int or '
                             f'None (all batches), but got '
                             f'{max_eval_batches!r}; use `enable=False` to '
                             'skip the gate.')
        if not isinstance(chance_factor, (int, float)) or chance_factor <= 0:
            raise ValueError('`chance_factor` should be a positive number, '
                             f'but got {chance_factor!r}.')
        self.enable = enable
        self.max_eval_batches = max_eval_batches
        self.teacher_metric = teacher_metric
        self.min_teacher_score = min_teacher_score
        self.chance_factor = float(chance_factor)
        self.fix = fix
        self.seconds: Optional[float] = None  # the gate's cost
        self._iter_start: Optional[float] = None
        self._cost_logged = False

    @staticmethod
    def distiller(runner) -> Distiller:
        """The run's Distiller, unwrapped from DDP and the like."""
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not isinstance(model, Distiller):
            raise TypeError(
                'TeacherGateHook should be used with a Distiller model, but '
                f'got {type(model).__name__}; remove `default_hooks.'
                'teacher_gate` or wrap the model in a Distiller.')
        return model

    def before_train(self, runner) -> None:
        if not self.enable:
            runner.logger.info('Teacher gate: switched off (enable=False).')
            return
        if runner.val_loop is None or not hasattr(runner.val_loop,
                                                  'dataloader'):
            print_log(
                'Teacher gate: the run has no validation loop, so the '
                'teacher is not checked; add `val_dataloader`, `val_cfg` '
                'and `val_evaluator`.',
                logger='current',
                level='WARNING')
            return
        start = time.perf_counter()
        metrics, images = self.evaluate_teacher(runner)
        self.seconds = time.perf_counter() - start
        batches = self.max_eval_batches or 'all'
        runner.logger.info(f'Teacher before training: {metrics} ({images} '
                           f'validation images, {batches} batches per '
                           f'process, {self.seconds:.2f} s)')
        self.judge_teacher(metrics, images, runner)

    def evaluate_teacher(self, runner) -> tuple:
        """The teacher's metrics on the first validation batches, and how
        many images they hold."""
        model = self.distiller(runner)
        loop = runner.val_loop
        evaluator = loop.evaluator
        was_training = model.training
        model.eval()
        images = 0
        try:
            with torch.no_grad():
                for i, batch in enumerate(loop.dataloader):
                    if self.max_eval_batches is not None and \
                            i >= self.max_eval_batches:
                        break
                    data = model.data_preprocessor(batch, False)
                    inputs = model.teacher_inputs(data['inputs'],
                                                  data['data_samples'])
                    outputs = model.teacher(
                        inputs, data['data_samples'], mode='predict')
                    evaluator.process(data_samples=outputs, data_batch=batch)
                    images += len(outputs)
            size = _world_total(images)
            with _only_seen_images(evaluator.metrics):
                metrics = evaluator.evaluate(size)
        finally:
            model.train(was_training)
        return metrics, images

    def judge_teacher(self, metrics: Dict[str, float], images: int,
                      runner) -> None:
        """Raise when the teacher's score is below the rule's threshold."""
        if not metrics:
            return
        key = self.teacher_metric or _preferred(metrics)
        if key not in metrics:
            raise ValueError(f'`teacher_metric` should be one of '
                             f'{sorted(metrics)}, but got {key!r}.')
        score = float(metrics[key])
        num_classes = _num_classes(runner, self.distiller(runner))
        chance = 100.0 / num_classes if num_classes else None
        if self.min_teacher_score is not None:
            threshold = float(self.min_teacher_score)
            rule = f'`min_teacher_score` {threshold:.4g}'
        elif key.endswith(('accuracy/top1', 'mIoU')) and chance:
            threshold = self.chance_factor * chance
            rule = (f'{self.chance_factor:g} x chance = {threshold:.4g}; '
                    f'chance = 100 / {num_classes} classes = {chance:.4g}')
        elif key.endswith('mAP'):
            threshold = MAP_FLOOR
            rule = (f'the mAP floor {MAP_FLOOR} (chance is ~0: boxes that '
                    'ignore the image match nothing)')
        else:
            print_log(
                f'Teacher gate: {key}={score:.4g} is logged but not judged '
                '(no chance level is known for it); set '
                '`default_hooks.teacher_gate.min_teacher_score`.',
                logger='current',
                level='WARNING')
            return
        if score >= threshold:
            return
        raise RuntimeError(
            f'The teacher scores {key}={score:.4g} on {images} validation '
            f'images, below {rule}: it is near chance, and distilling from '
            'it would train the student on noise. Likely causes: no or the '
            f'wrong checkpoint (`model.teacher_ckpt` is '
            f'{self.distiller(runner).teacher_source!r}; check the key '
            'mapping, `teacher_ckpt_converter`), other preprocessing than '
            "the teacher was trained with (the teacher's "
            '`data_preprocessor`: mean/std, channel order; '
            '`model.teacher_preprocess`), or another class order or class '
            "set than the dataset's. " +
            (f'Fix: {self.fix} ' if self.fix else '') +
            'Nothing was trained or saved. To judge otherwise, set '
            '`--cfg-options default_hooks.teacher_gate.min_teacher_score='
            'SCORE` (or `...teacher_gate.enable=False` to skip the gate).')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None):
        if self.seconds is not None and not self._cost_logged:
            self._iter_start = time.perf_counter()

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        # The first iteration pays one-off costs (allocator, cudnn search,
        # workers starting); the second is a fair unit of the gate's cost.
        if self._iter_start is None or self._cost_logged:
            return
        seconds = time.perf_counter() - self._iter_start
        # `runner.iter` counts finished iterations before this one (0-based
        # here); a run of one iteration states the cost against that one.
        if runner.iter >= 1 or runner.iter + 1 >= runner.max_iters:
            self._cost_logged = True
            runner.logger.info(
                f'Teacher gate cost: {self.seconds:.2f} s, '
                f'{self.seconds / max(seconds, 1e-9):.1f} training '
                f'iteration(s) of {seconds:.3f} s '
                f'(max_eval_batches={self.max_eval_batches}).')


def _preferred(metrics: Dict[str, float]) -> str:
    for suffix in PREFERRED_METRICS:
        for key in metrics:
            if key.endswith(suffix):
                return key
    return next(iter(metrics))


def _num_classes(runner, model: Distiller) -> Optional[int]:
    """The validation dataset's class count, else the teacher head's."""
    dataset = runner.val_loop.dataloader.dataset
    classes = getattr(dataset, 'metainfo', {}).get('classes')
    if classes:
        return len(classes)
    for module in model.teacher.modules():
        count = getattr(module, 'num_classes', None)
        if isinstance(count, int) and count > 0:
            return count
    return None


def _world_total(count: int) -> int:
    """``count`` summed over the processes of a distributed run."""
    from mmengine.dist import all_reduce, get_world_size
    if get_world_size() == 1:
        return count
    total = torch.tensor(count, dtype=torch.long)
    all_reduce(total)
    return int(total)


class _only_seen_images:
    """COCO-style metrics score every image of their annotation file; on a
    few batches, all the others would count as missed and a good teacher
    would score ~0. Restrict them to the images evaluated, then restore."""

    def __init__(self, metrics: Sequence) -> None:
        self.metrics = [
            m for m in metrics
            if hasattr(m, 'img_ids') and getattr(m, '_coco_api', None)
        ]
        self.saved = [m.img_ids for m in self.metrics]

    def __enter__(self) -> None:
        for metric in self.metrics:
            seen = sorted({pred['img_id'] for _, pred in metric.results})
            metric.img_ids = seen

    def __exit__(self, *exc_info) -> None:
        for metric, ids in zip(self.metrics, self.saved):
            metric.img_ids = ids
