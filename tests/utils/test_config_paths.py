"""Config names are checked before anything runs them: a ``pkg::`` name
stays inside that package's configs, a URL is refused; the teacher (the
Distiller's, ``--teacher``) and the student on the command line alike,
through the real tools/train.py."""
import os.path as osp

import pytest
from distkd_testing import (run_tool, save_teacher, tiny_classifier,
                            tiny_distiller, write_config)
from mmengine.config import Config
from mmengine.utils import get_installed_path

from distkd_mm.distillers.teacher import teacher_model_cfg, zoo_checkpoint
from distkd_mm.utils.config_paths import resolve_config_path

URL_REFUSED = ('URLs are not accepted here: download the config and pass '
               'its path')


@pytest.fixture
def evil(tmp_path):
    """A config outside every package that leaves a marker when it runs,
    and the ``mmdet::`` name that climbs out of mmdet's configs to it."""
    marker = tmp_path / 'marker'
    path = tmp_path / 'evil.py'
    path.write_text(f'open({str(marker)!r}, "w").close()\n'
                    f'model = {tiny_classifier(8)!r}\n')
    configs = osp.join(get_installed_path('mmdet'), '.mim', 'configs')
    name = 'mmdet::retinanet/' + osp.relpath(
        str(path), osp.join(configs, 'retinanet'))
    assert '..' in name
    # The marker works: running the file leaves it (then it is removed).
    Config.fromfile(str(path))
    assert marker.exists()
    marker.unlink()
    return name, str(path), marker


@pytest.mark.slow
def test_pkg_name_climbing_out_of_the_package_never_runs_its_file(
        evil, imagenet_root, tmp_path):
    name, path, marker = evil
    ckpt = save_teacher(tmp_path / 'teacher.pth')
    plain = write_config(tmp_path / 'plain.py', imagenet_root,
                         str(tmp_path / 'work'), tiny_classifier(4), 1)
    distill = write_config(tmp_path / 'distill.py', imagenet_root,
                           str(tmp_path / 'work2'),
                           tiny_distiller(teacher=name, teacher_ckpt=ckpt), 1)
    runs = [
        # --teacher on the command line, a Distiller config's teacher, and
        # the student config itself.
        ('`teacher`', ('train', plain, '--teacher', name, '--teacher-ckpt',
                       ckpt)),
        ('`teacher`', ('train', distill)),
        ('`config`', ('train', name)),
    ]
    for arg, args in runs:
        with pytest.raises(ValueError) as error:
            run_tool(*args)
        message = str(error.value)
        # (MMEngine's registry puts the class's name before a build error.)
        assert f'{arg} {name!r} should name a config inside ' in message
        assert '/mmdet/.mim/configs (the configs of ' in message
        assert f'but it resolves to {path}' in message
        assert not marker.exists(), f'{args} ran {path}'
    assert not (tmp_path / 'work').exists()


def test_pretrained_teacher_climbing_out_of_the_package_is_refused(evil):
    name, path, marker = evil
    with pytest.raises(ValueError, match=f'but it resolves to {path}'):
        zoo_checkpoint(name)
    absolute = f'mmdet::{path}'  # mmengine would join an absolute path too
    with pytest.raises(ValueError, match=f'but it resolves to {path}'):
        teacher_model_cfg(absolute)
    assert not marker.exists()


def test_url_as_a_config_is_refused_saying_so(imagenet_root, tmp_path):
    plain = write_config(tmp_path / 'plain.py', imagenet_root,
                         str(tmp_path / 'work'), tiny_classifier(4), 1)
    url = 'https://127.0.0.1:9/configs/teacher.py'
    with pytest.raises(ValueError) as error:
        run_tool('train', plain, '--teacher', url)
    assert str(error.value) == (
        "`teacher` should be a local config file or a 'pkg::path' config, "
        f"but got the URL {url!r}. {URL_REFUSED}.")
    with pytest.raises(
            ValueError, match=f'`config` should be .* {url!r}. '
            f'{URL_REFUSED}'):
        run_tool('train', url)
    with pytest.raises(ValueError, match=URL_REFUSED):
        teacher_model_cfg('s3://bucket/teacher.py')


def test_package_configs_still_resolve_inside_the_package():
    root = osp.realpath(
        osp.join(get_installed_path('mmpretrain'), '.mim', 'configs'))
    # A metafile-listed recipe and a `_base_` file (listed in no metafile).
    model, scope = teacher_model_cfg(
        'mmpretrain::resnet/resnet18_8xb32_in1k.py')
    assert model.backbone.depth == 18 and scope == 'mmpretrain'
    base = resolve_config_path('mmpretrain::_base_/models/resnet18.py')
    assert base == osp.join(root, '_base_', 'models', 'resnet18.py')
    # `..` that stays inside is the package's own file.
    inside = resolve_config_path(
        'mmpretrain::resnet/../_base_/models/resnet18.py')
    assert inside == base


def test_package_that_is_not_installed_is_refused_not_pip_installed():
    with pytest.raises(
            ValueError, match='mmdet3d is not installed; install '
            'it'):
        teacher_model_cfg('mmdet3d::pointpillars/x.py')
    with pytest.raises(
            ValueError,
            match="with pkg one of .*'mmdet'.*, but "
            "got 'nopkg::a/b.py'"):
        teacher_model_cfg('nopkg::a/b.py')


def test_a_refused_config_url_is_named_without_its_token():
    url = 'https://user:pw@host/configs/teacher.py?token=s3cr3t'
    with pytest.raises(ValueError) as error:
        resolve_config_path(url, 'teacher')
    assert "got the URL 'https://host/configs/teacher.py'" in str(error.value)
    assert 's3cr3t' not in str(error.value) and 'pw' not in str(error.value)
