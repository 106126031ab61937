"""Helpers shared by the tests: tiny real models, configs, scripts.

A module of its own (not conftest.py) so that every test imports the same
file, whatever other conftest.py files pytest has loaded.
"""
import contextlib
import glob
import importlib.util
import inspect
import json
import logging
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import MODELS, DefaultScope

import distkd_mm  # noqa: F401  (registers Distiller, DISTLoss, ...)
from distkd_mm.apis.cli import unique_experiment_name
from distkd_mm.distillers.teacher import teacher_model_cfg

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(name: str):
    """Import ``tools/<name>.py`` (or any ``.py`` path) as a module: the
    tools are scripts, not a package. ``tools/<name>/``, a package the
    scripts import, is imported under its own name, as a script sees it:
    its modules and the scripts using it then import as usual."""
    package = osp.join(REPO, 'tools', name)
    if osp.isdir(package):
        spec = importlib.util.spec_from_file_location(
            name,
            osp.join(package, '__init__.py'),
            submodule_search_locations=[package])
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
        return sys.modules[name]
    path = name if name.endswith('.py') else osp.join(REPO, 'tools', name +
                                                      '.py')
    module_name = osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool(name: str, *args: str):
    """Run ``tools/<name>.py`` in this process as its command line would:
    ``main(args)``, or ``main()`` reading ``sys.argv``; ``sys.argv`` and
    ``LOCAL_RANK`` (the runner tools set it) are restored afterwards."""
    tool = load_tool(name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, 'argv', [f'{name}.py', *args])
        # Undone on leaving: the runner tools set it.
        patch.setenv('LOCAL_RANK', os.environ.get('LOCAL_RANK', '0'))
        if inspect.signature(tool.main).parameters:
            return tool.main(list(args))
        return tool.main()


def tiny_classifier(width: int = 8, num_classes: int = 10) -> dict:
    """An mmpretrain ImageClassifier small enough for a CPU unit test."""
    return dict(
        type='mmpretrain.ImageClassifier',
        data_preprocessor=dict(
            type='mmpretrain.ClsDataPreprocessor',
            mean=[127.5] * 3,
            std=[64.0] * 3),
        backbone=dict(
            type='mmpretrain.ResNet_CIFAR',
            depth=18,
            stem_channels=width,
            base_channels=width,
            num_stages=2,
            strides=(1, 2),
            dilations=(1, 1),
            out_indices=(1, )),
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(
            type='mmpretrain.LinearClsHead',
            num_classes=num_classes,
            in_channels=width * 2,
            loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0)))


def one_term_distiller(student: dict, teacher: dict, student_tap: str,
                       teacher_tap: str, loss: dict, **kwargs) -> dict:
    """A Distiller config with one term, ``loss_dist``; ``kwargs`` are
    further Distiller arguments."""
    return dict(
        type='Distiller',
        student=student,
        teacher=teacher,
        distill_losses=dict(
            loss_dist=dict(
                student=student_tap, teacher=teacher_tap, loss=loss)),
        **kwargs)


def tiny_distiller(student_width: int = 4,
                   teacher_width: int = 8,
                   teacher_classes: int = 10,
                   **kwargs) -> dict:
    """A Distiller config pairing two tiny classifiers with DIST on logits."""
    cfg = one_term_distiller(
        tiny_classifier(student_width),
        tiny_classifier(teacher_width, teacher_classes), 'head.fc', 'head.fc',
        dict(type='DISTLoss', tau=1.0, loss_weight=2.0))
    cfg.update(kwargs)
    return cfg


def runner_cfg(root: str, work_dir: str, model: dict, max_epochs: int) -> dict:
    """A small epoch-based mmpretrain run on an image-folder dataset."""
    pipeline = [
        dict(type='mmpretrain.LoadImageFromFile'),
        dict(type='mmpretrain.ResizeEdge', scale=16, edge='short'),
        dict(type='mmpretrain.CenterCrop', crop_size=16),
        dict(type='mmpretrain.PackInputs'),
    ]
    dataset = dict(
        type='mmpretrain.CustomDataset',
        data_root=root,
        data_prefix='train',
        pipeline=pipeline)
    return dict(
        model=model,
        work_dir=work_dir,
        experiment_name=unique_experiment_name('tiny'),
        train_dataloader=dict(
            dataset=dataset,
            batch_size=4,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True)),
        val_dataloader=dict(
            dataset=dataset,
            batch_size=4,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False)),
        val_evaluator=dict(type='mmpretrain.Accuracy', topk=(1, )),
        val_cfg=dict(),
        test_dataloader=dict(
            dataset=dataset,
            batch_size=4,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False)),
        test_evaluator=dict(type='mmpretrain.Accuracy', topk=(1, )),
        test_cfg=dict(),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs, val_interval=1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1),
            logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0, deterministic=True),
        default_scope='mmpretrain',
        log_level='WARNING')


def write_config(path, root, work_dir, model, epochs, **extra) -> str:
    """Write :func:`runner_cfg` as a config file for the command line."""
    cfg = runner_cfg(root, work_dir, model, epochs)
    # As in a user's file: the tools give each run its own name.
    del cfg['experiment_name']
    cfg.update(extra)
    Config(cfg).dump(str(path))
    return str(path)


def cli_start(args, tmp, **env) -> subprocess.Popen:
    """:func:`cli` started in the background: ``communicate()`` waits for
    it (and returns its stdout and stderr)."""
    env = dict(
        os.environ, PYTHONPATH=f'{tmp}:{REPO}', OMP_NUM_THREADS='1', **env)
    return subprocess.Popen([sys.executable, *args],
                            cwd=REPO,
                            env=env,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE,
                            text=True)


def cli(args, tmp, **env) -> subprocess.CompletedProcess:
    """Run a repository script with ``tmp`` importable (test plugins)."""
    env = dict(
        os.environ, PYTHONPATH=f'{tmp}:{REPO}', OMP_NUM_THREADS='1', **env)
    return subprocess.run([sys.executable, *args],
                          cwd=REPO,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)


def unformatted(cfg: Config) -> Config:
    """``cfg`` with its text left unformatted: a Runner formats its config
    (yapf) to log it, dump it and put it in every checkpoint, seconds each
    time for a detection or segmentation config. mmengine 0.10's
    ``Config.fromfile`` ignores its ``format_python_code`` argument."""
    return Config(
        cfg.to_dict(), filename=cfg.filename, format_python_code=False)


def run_library_tool(cmd, cwd) -> subprocess.CompletedProcess:
    """Run a library's script; fail with the end of its output."""
    result = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    output = result.stdout[-2000:] + result.stderr[-3000:]
    assert result.returncode == 0, output
    return result


def logged_scalars(work_dir: str) -> dict:
    """The last value of each scalar in a run's ``scalars.json``."""
    files = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    assert len(files) == 1, files
    scalars = {}
    with open(files[0]) as f:
        for line in f:
            scalars.update(json.loads(line))
    return scalars


def save_teacher(path, width: int = 8, seed: int = 0) -> str:
    """A random tiny teacher checkpoint (seeded), in MMEngine's format."""
    torch.manual_seed(seed)
    state = MODELS.build(tiny_classifier(width)).state_dict()
    torch.save({'meta': {'epoch': 1}, 'state_dict': state}, str(path))
    return str(path)


def random_teacher(teacher, seed: int = 0) -> torch.nn.Module:
    """The model a Distiller's ``teacher`` names (a model dict, a config
    file or ``'pkg::path'``), built in its scope with seeded random weights.
    """
    model_cfg, scope = teacher_model_cfg(teacher)
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(model_cfg)


def save_random_teacher(teacher, path, seed: int = 0) -> str:
    """:func:`random_teacher` saved as the model zoo saves weights."""
    state = random_teacher(teacher, seed).state_dict()
    torch.save({'meta': {}, 'state_dict': state}, str(path))
    return str(path)


def write_image_folder(root: str, split: str, num_per_class: int, classes: int,
                       size: int, seed: int) -> None:
    """Write an ImageNet-format split: <split>/<cls>/*.JPEG + meta list.

    Each class gets its own colour and stripe pattern, so a model can learn
    it in a few steps.
    """
    from PIL import Image
    rng = np.random.default_rng(seed)
    lines = []
    for label in range(classes):
        folder = osp.join(root, split, f'n{label:08d}')
        os.makedirs(folder, exist_ok=True)
        for k in range(num_per_class):
            img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            img[:, :, label % 3] += 120
            img[label % size::classes, :] = 250
            name = f'n{label:08d}/img_{k}.JPEG'
            Image.fromarray(img).save(osp.join(root, split, name))
            lines.append(f'{name} {label}')
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


@contextlib.contextmanager
def captured_logs(logger=None):
    """The records MMEngine's logger (the current one by default) receives
    inside the block."""
    logger = logger or MMLogger.get_current_instance()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
