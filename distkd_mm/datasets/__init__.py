"""Datasets and transforms that need mmpretrain.

Importing this package registers :class:`DigitsDataset` (the CPU demo's
data, in mmpretrain's ``DATASETS``) and :class:`DISTRandAugment` (the
seed's RandAugment, in MMEngine's root ``TRANSFORMS``). It is deliberately
not imported by ``distkd_mm`` itself, so the core plugin keeps working
without mmpretrain installed; configs that need it list
``'distkd_mm.datasets'`` in ``custom_imports``.
"""
from .digits import DigitsDataset
from .rand_augment import DISTRandAugment

__all__ = ['DigitsDataset', 'DISTRandAugment']
