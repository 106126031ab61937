"""Install distkd_mm: DIST knowledge distillation for OpenMMLab 2.x."""
import importlib.util
import os
import os.path as osp
import shutil
import sys
from setuptools import find_packages, setup
from typing import List

# What `mim` looks for inside an installed package (mmdet's layout), and
# the stack's versions, which tools/check_env.py reads from beside tools/.
MIM_FILES = ('configs', 'tools', 'model-index.yml', 'requirements')


def load_stack():
    """requirements/stack.py by path: the stack's versions, written once."""
    path = osp.join(
        osp.dirname(osp.abspath(__file__)), 'requirements', 'stack.py')
    spec = importlib.util.spec_from_file_location('_distkd_stack', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.read_stack()


def requirements(stack, *names: str) -> List[str]:
    """The supported range of each of ``names`` (not the pinned version:
    an existing environment keeps what it has within the range)."""
    return [stack[name].requirement for name in names]


def read_version() -> str:
    path = osp.join(osp.dirname(__file__), 'distkd_mm', 'version.py')
    scope: dict = {}
    with open(path, encoding='utf-8') as f:
        exec(f.read(), scope)
    return scope['__version__']


def add_mim_extension() -> None:
    """Put configs, tools and the model index under ``distkd_mm/.mim``.

    As mmdet's setup.py does: symlinks to the originals for an editable
    install (``pip install -e .``; edits stay live), copies for a wheel or
    an sdist (``pip install .``, ``pip wheel .``). Other commands (metadata
    only) leave ``.mim`` as it is.
    """
    if {'develop', 'editable_wheel'} & set(sys.argv):
        mode = 'copy' if os.name == 'nt' else 'symlink'
    elif {'bdist_wheel', 'sdist', 'build', 'install'} & set(sys.argv):
        mode = 'copy'
    else:
        return
    root = osp.dirname(osp.abspath(__file__))
    mim = osp.join(root, 'distkd_mm', '.mim')
    os.makedirs(mim, exist_ok=True)
    for name in MIM_FILES:
        src, dst = osp.join(root, name), osp.join(mim, name)
        if not osp.exists(src):
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim), dst)
        elif osp.isdir(src):
            shutil.copytree(
                src, dst, ignore=shutil.ignore_patterns('__pycache__'))
        else:
            shutil.copyfile(src, dst)


def main() -> None:
    stack = load_stack()
    add_mim_extension()
    setup(
        name='distkd_mm',
        version=read_version(),
        description='DIST knowledge distillation (NeurIPS 2022) for '
        'MMEngine: classification, detection and segmentation',
        long_description=open('README.md', encoding='utf-8').read(),
        long_description_content_type='text/markdown',
        packages=find_packages(exclude=('configs', 'tools', 'tests')),
        include_package_data=True,  # distkd_mm/.mim, listed in MANIFEST.in
        python_requires='>=3.9',
        install_requires=requirements(stack, 'torch', 'mmengine', 'mmcv',
                                      'numpy'),
        extras_require={
            'cls': requirements(stack, 'mmpretrain'),
            'det': requirements(stack, 'mmdet'),
            'seg': requirements(stack, 'mmsegmentation') + ['ftfy', 'regex'],
            'demo': ['scikit-learn', 'matplotlib'],
            'tests': ['pytest', 'scikit-learn', 'matplotlib', 'pycocotools'],
        },
        license='Apache License 2.0',
        zip_safe=False,
    )


# setuptools runs this file as __main__; the tests load it for its
# functions.
if __name__ == '__main__':
    main()
