#!/usr/bin/env python
"""How much does running the teacher in bf16 (or fp16) move distillation?

The seed's teachers ran in fp32; ``teacher_autocast='auto'`` runs them in
bf16 on GPUs. For a distillation config and its teacher weights this runs
the same validation batches through the teacher twice, in fp32 and under
autocast, and prints JSON with

* ``loss_rel_change``: |L_low - L_fp32| / |L_fp32| of every distillation
  term and of their sum, on the summed losses over all batches, and the
  largest per-batch value (``max_batch_rel_change``);
* ``top1_agreement``: the share of rows (samples, or pixels/locations of a
  dense tap) whose teacher argmax is the same in both precisions;
* ``max_abs_logit_diff`` of the teacher taps.

The student runs in eval mode (no dropout, BN on running statistics), so
only the teacher's precision differs between the two passes.

Example::

    python tools/teacher_precision.py configs/demo/digits_dist.py \\
        --teacher-ckpt work_dirs/digits_teacher/epoch_20.pth --batches 4
    python tools/teacher_precision.py CONFIG --device cuda --batches 20
"""
import argparse
import json
import sys
from typing import Dict, List, Optional

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner import Runner
from mmengine.utils import import_modules_from_strings

DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a distillation config (Distiller)')
    parser.add_argument('--teacher-ckpt', help='overrides model.teacher_ckpt')
    parser.add_argument(
        '--student-ckpt',
        help='student weights (a plain student checkpoint or a '
        'distillation run\'s, whose `student.` keys are used)')
    parser.add_argument('--dtype', choices=sorted(DTYPES), default='bf16')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batches', type=int, default=4)
    parser.add_argument('--batch-size', type=int, help='val batch size')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def build(args: argparse.Namespace) -> tuple:
    """The Distiller (eval mode, on ``args.device``) and the val loader."""
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.model.get('type') != 'Distiller':
        raise ValueError('`config` should define a Distiller model, but its '
                         f'model type is {cfg.model.get("type")!r}.')
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    if args.teacher_ckpt:
        cfg.model.teacher_ckpt = args.teacher_ckpt
    cfg.model.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    loader_cfg = cfg.val_dataloader
    loader_cfg.update(num_workers=0, persistent_workers=False)
    if args.batch_size:
        loader_cfg.batch_size = args.batch_size
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        model = MODELS.build(cfg.model)
        loader = Runner.build_dataloader(loader_cfg)
    if args.student_ckpt:
        model.student.load_state_dict(student_of(args.student_ckpt))
    return model.to(args.device).eval(), loader


def student_of(path: str) -> dict:
    """The student's weights in a student or a Distiller checkpoint (the
    averaged ones of an EMA run, as validation scored them)."""
    from mmengine.runner import CheckpointLoader

    from distkd_mm.utils import student_layout as layout
    checkpoint = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    if layout.checkpoint_layout(checkpoint) == layout.PLAIN:
        return layout.bare_state(layout.state_dict_of(checkpoint))
    return layout.student_weights(checkpoint)


def set_precision(model, dtype: Optional[str]) -> None:
    """The teacher in fp32 (``None``) or under ``'bf16'``/``'fp16'``."""
    model.teacher_run.autocast = dtype


def teacher_outputs(model,
                    inputs,
                    samples,
                    dtype,
                    student=None) -> Dict[str, list]:
    """The teacher's tap tensors in fp32 (``dtype=None``) or autocast;
    ``student``: what a two-stage teacher needs of the student's step."""
    from distkd_mm.distillers.nonfinite import tensors_of
    set_precision(model, dtype)
    outputs = model.run_teacher(
        inputs, samples, fp32=dtype is None, student=student)
    return {
        path: [t.float().clone() for call in calls for t in tensors_of(call)]
        for path, calls in outputs.items()
    }


def distill_terms(model, inputs, samples, dtype) -> Dict[str, float]:
    set_precision(model, dtype)
    losses = model.loss(inputs, samples)
    return {name: float(losses[name]) for name in model.terms}


def rows_argmax(t: torch.Tensor) -> torch.Tensor:
    """Argmax over the class/channel axis, one entry per row (sample or
    spatial position)."""
    return t.argmax(1).flatten()


def measure(args: argparse.Namespace) -> dict:
    model, loader = build(args)
    low = args.dtype
    sums = {'fp32': {}, args.dtype: {}}
    batch_rel, agree, rows, max_diff = [], 0, 0, 0.0
    with torch.no_grad():
        for i, batch in enumerate(loader):
            if i == args.batches:
                break
            data = model.data_preprocessor(batch, training=False)
            inputs, samples = data['inputs'], data['data_samples']
            # Once per batch: both precisions see the same sampled RoIs.
            student = model.teacher_run.record_student(model.student, inputs,
                                                       samples)
            ref = teacher_outputs(model, inputs, samples, None, student)
            out = teacher_outputs(model, inputs, samples, low, student)
            for path in ref:
                for a, b in zip(ref[path], out[path]):
                    max_diff = max(max_diff, float((a - b).abs().max()))
                    if a.dim() >= 2:
                        same = rows_argmax(a) == rows_argmax(b)
                        agree += int(same.sum())
                        rows += same.numel()
            terms = {
                'fp32': distill_terms(model, inputs, samples, None),
                args.dtype: distill_terms(model, inputs, samples, low)
            }
            for key, values in terms.items():
                values['total'] = sum(values.values())
                for name, v in values.items():
                    sums[key][name] = sums[key].get(name, 0.0) + v
            batch_rel.append(
                abs(terms[args.dtype]['total'] - terms['fp32']['total']) /
                abs(terms['fp32']['total']))
    rel = {
        name: abs(sums[args.dtype][name] - ref_sum) / abs(ref_sum)
        for name, ref_sum in sums['fp32'].items()
    }
    return dict(
        config=args.config,
        device=str(torch.device(args.device)),
        dtype=args.dtype,
        batches=len(batch_rel),
        loss_fp32=sums['fp32'],
        loss_low=sums[args.dtype],
        loss_rel_change=rel,
        max_batch_rel_change=max(batch_rel),
        top1_agreement=agree / rows if rows else None,
        max_abs_logit_diff=max_diff)


def main(argv: Optional[List[str]] = None) -> dict:
    result = measure(parse_args(argv))
    json.dump(result, sys.stdout, indent=2)
    print()
    return result


if __name__ == '__main__':
    main()
