"""Datasets for the CPU demo.

Importing this package registers :class:`DigitsDataset` in mmpretrain's
``DATASETS`` registry. It is deliberately not imported by ``distkd_mm``
itself, so the core plugin keeps working without mmpretrain installed;
configs that need it list ``'distkd_mm.datasets'`` in ``custom_imports``.
"""
from .digits import DigitsDataset

__all__ = ['DigitsDataset']
