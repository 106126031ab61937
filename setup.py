"""Install distkd_mm: DIST knowledge distillation for OpenMMLab 2.x."""
import os.path as osp

from setuptools import find_packages, setup


def read_version() -> str:
    path = osp.join(osp.dirname(__file__), 'distkd_mm', 'version.py')
    scope: dict = {}
    with open(path, encoding='utf-8') as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='distkd_mm',
    version=read_version(),
    description='DIST knowledge distillation (NeurIPS 2022) for MMEngine: '
    'classification, detection and segmentation',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
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
