"""Install distkd_mm: DIST knowledge distillation for OpenMMLab 2.x."""
import os
import os.path as osp
import shutil
import sys
from setuptools import find_packages, setup

# What `mim` looks for inside an installed package (mmdet's layout).
MIM_FILES = ('configs', 'tools', 'model-index.yml')


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


add_mim_extension()
setup(
    name='distkd_mm',
    version=read_version(),
    description='DIST knowledge distillation (NeurIPS 2022) for MMEngine: '
    'classification, detection and segmentation',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    include_package_data=True,  # distkd_mm/.mim, listed in MANIFEST.in
    python_requires='>=3.9',
    install_requires=[
        'torch>=2.0',
        'mmengine>=0.10.0,<0.11',
        'mmcv>=2.0.0,<2.2.0',
        'numpy',
    ],
    extras_require={
        'cls': ['mmpretrain>=1.2.0'],
        'det': ['mmdet>=3.3.0'],
        'seg': ['mmsegmentation>=1.2.2', 'ftfy', 'regex'],
        'demo': ['scikit-learn', 'matplotlib'],
        'tests': ['pytest', 'scikit-learn', 'matplotlib', 'pycocotools'],
    },
    license='Apache License 2.0',
    zip_safe=False,
)
