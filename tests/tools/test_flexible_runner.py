"""The runner a config names: ``runner_type`` (FlexibleRunner with a
``strategy``), as tools/train.py builds and starts it. The 2-rank run under
DDPStrategy is in test_launch.py."""
import json

import pytest
import torch
from distkd_testing import (load_tool, run_tool, runner_cfg, tiny_classifier,
                            tiny_distiller, write_config)
from mmengine.config import Config
from mmengine.registry import MODELS
from mmengine.runner import FlexibleRunner, Runner

from distkd_mm.apis.cli import (build_runner, check_auto_resume,
                                fit_runner_to_launcher)


@pytest.fixture
def train_tool():
    return load_tool('train')


def write_tiny_config(path, **extra) -> str:
    Config(
        dict(
            model=tiny_distiller(),
            default_scope='mmpretrain',
            log_level='WARNING',
            **extra)).dump(str(path))
    return str(path)


@pytest.mark.slow  # builds the runners
def test_train_builds_the_runner_type_the_config_names(tmp_path, train_tool):
    flexible = write_tiny_config(
        tmp_path / 'flexible.py', runner_type='FlexibleRunner')
    plain = write_tiny_config(tmp_path / 'plain.py')
    built = []
    for path in (flexible, plain):
        args = train_tool.parse_args(
            [path, '--work-dir', str(tmp_path / 'work')])
        cfg, _ = train_tool.build_config(args)
        built.append(type(build_runner(cfg)))
    assert built == [FlexibleRunner, Runner]


def test_one_process_runs_a_ddp_strategy_on_one_device(tmp_path, train_tool):
    # DDP needs a process group, which `--launcher none` never joins.
    path = write_tiny_config(
        tmp_path / 'ddp.py',
        runner_type='FlexibleRunner',
        strategy=dict(
            type='DDPStrategy',
            sync_bn='torch',
            model_wrapper=dict(type='MMDistributedDataParallel'),
            compile=False))
    args = train_tool.parse_args([path, '--work-dir', str(tmp_path / 'w')])
    cfg, notes = train_tool.build_config(args)
    assert cfg.strategy == dict(type='SingleDeviceStrategy', compile=False)
    assert any('DDPStrategy needs a launcher' in note for note in notes)


def test_a_strategy_without_ddp_is_left_as_configured():
    cfg = Config(
        dict(
            runner_type='FlexibleRunner',
            launcher='none',
            strategy=dict(type='SingleDeviceStrategy')))
    assert fit_runner_to_launcher(cfg) == []
    assert cfg.strategy == dict(type='SingleDeviceStrategy')


@pytest.mark.skipif(torch.cuda.is_available(), reason='a CPU-only rule')
@pytest.mark.parametrize('strategy', ['FSDPStrategy', 'DeepSpeedStrategy'])
def test_cpu_ddp_refuses_a_strategy_that_needs_cuda(strategy):
    cfg = Config(
        dict(
            runner_type='FlexibleRunner',
            launcher='pytorch',
            strategy=dict(type=strategy)))
    with pytest.raises(ValueError, match=f'got {strategy}, which needs CUDA'):
        fit_runner_to_launcher(cfg)
    # Refused before joining a process group.
    assert not torch.distributed.is_initialized()


def test_unknown_runner_type_names_the_registry():
    cfg = Config(dict(runner_type='FlexRunner', launcher='none'))
    with pytest.raises(KeyError, match="registered in MMEngine's RUNNERS"):
        fit_runner_to_launcher(cfg)


def flexible_run(root, work_dir, model, epochs, **extra) -> FlexibleRunner:
    cfg = Config(runner_cfg(root, work_dir, model, epochs))
    cfg.merge_from_dict(dict(runner_type='FlexibleRunner', **extra))
    return build_runner(cfg)


@pytest.mark.slow  # trains a FlexibleRunner, twice
def test_flexible_auto_resume_continues_its_own_and_refuses_another_model(
        tmp_path, imagenet_root):
    work = str(tmp_path / 'work')
    first = flexible_run(imagenet_root, work, tiny_distiller(), 1)
    first.train()
    logged = len(first.message_hub.get_scalar('train/loss').data[0])
    # The same model continues (its model is built only in train()).
    again = flexible_run(imagenet_root, work, tiny_distiller(), 2, resume=True)
    check_auto_resume(again, again.cfg)
    again.train()
    assert again.epoch == 2
    # With its log buffers (MMEngine's HistoryBuffer, restored only in a
    # resume's scope): the first epoch's losses are still there.
    losses = again.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == 2 * logged
    # A wider student in the same work dir is refused before any load.
    other = flexible_run(
        imagenet_root, work, tiny_distiller(student_width=8), 3, resume=True)
    check_auto_resume(other, other.cfg)
    with pytest.raises(RuntimeError, match='a different model wrote it'):
        other.train()


@pytest.fixture
def ddp_strategy_checkpoint(tmp_path) -> str:
    """A Distiller checkpoint as DDPStrategy saves it: the DDP wrapper's
    keys (``module.student.*``)."""
    torch.manual_seed(0)
    state = MODELS.build(tiny_distiller()).state_dict()
    path = str(tmp_path / 'ddp_strategy.pth')
    torch.save(
        {
            'meta': {},
            'state_dict': {
                f'module.{k}': v
                for k, v in state.items()
            }
        }, path)
    return path


def test_test_tool_checks_heads_of_a_ddp_strategy_checkpoint(
        ddp_strategy_checkpoint, imagenet_root, tmp_path):
    # Its student has 10 classes: a 7-class head would score at random,
    # whether the config or a --cfg-options override says 7.
    seven = write_config(tmp_path / 'seven.py', imagenet_root,
                         str(tmp_path / 'test'), tiny_classifier(4, 7), 1)
    ten = write_config(tmp_path / 'ten.py', imagenet_root,
                       str(tmp_path / 'test'), tiny_classifier(4, 10), 1)
    override = ['--cfg-options', 'model.head.num_classes=7']
    for config, options in ((seven, []), (ten, override)):
        with pytest.raises(ValueError, match=r'nothing of head\.fc fits'):
            run_tool('test', config, ddp_strategy_checkpoint, *options)


@pytest.mark.slow  # the library's test.py runs a FlexibleRunner
def test_test_tool_runs_the_flexible_runner_its_cfg_options_name(
        ddp_strategy_checkpoint, imagenet_root, tmp_path):
    plain = write_config(tmp_path / 'plain.py', imagenet_root,
                         str(tmp_path / 'test'), tiny_classifier(4), 1)
    out = tmp_path / 'metrics.json'
    # One process: the DDPStrategy runs on one device.
    run_tool('test', plain, ddp_strategy_checkpoint, '--cfg-options',
             'runner_type=FlexibleRunner', 'strategy.type=DDPStrategy',
             '--out', str(out), '--out-item', 'metrics')
    assert 'accuracy/top1' in json.loads(out.read_text())
