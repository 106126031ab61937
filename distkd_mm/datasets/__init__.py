"""Datasets and transforms that need mmpretrain.

Importing this package registers :class:`DigitsDataset` (the CPU demo's
data, in mmpretrain's ``DATASETS``), :class:`DISTRandAugment` (the
seed's RandAugment, in MMEngine's root ``TRANSFORMS``) and
:class:`DISTRandomErasing` (the seed's random erasing after normalisation,
in mmpretrain's ``BATCH_AUGMENTS``: MMEngine has no root registry for batch
augmentations). It is deliberately
not imported by ``distkd_mm`` itself, so the core plugin keeps working
without mmpretrain installed; configs that need it list
``'distkd_mm.datasets'`` in ``custom_imports``.
"""
from .digits import DigitsDataset
from .rand_augment import DISTRandAugment
from .random_erasing import DISTRandomErasing

__all__ = ['DigitsDataset', 'DISTRandAugment', 'DISTRandomErasing']
