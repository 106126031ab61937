"""scikit-learn's bundled handwritten digits as an mmpretrain dataset.

The 1797 8x8 images ship inside scikit-learn, so the demo trains on real
data without any network access or download step.
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

DIGITS_CLASSES = tuple(str(i) for i in range(10))


@DATASETS.register_module()
class DigitsDataset(BaseDataset):
    """The scikit-learn digits dataset (1797 real 8x8 grey images, 10 classes).

    The data is split once, deterministically and stratified by class, into a
    train and a val part. The split depends only on ``split_seed`` and
    ``val_ratio``, never on the training seed, so runs with different
    training seeds are evaluated on the same images.

    Images are ``uint8`` arrays of shape ``(8, 8, 1)`` rescaled from the
    original 0..16 grey levels to 0..255, so mmpretrain's image transforms
    and ``ClsDataPreprocessor`` treat them like any other image.

    Args:
        split (str): ``'train'`` or ``'val'``. Defaults to ``'train'``.
        val_ratio (float): Fraction of every class that goes to ``'val'``.
            Defaults to 0.25.
        split_seed (int): Seed of the train/val split. Defaults to 0.
        metainfo (dict, optional): Meta information; ``classes`` defaults to
            ``'0'`` .. ``'9'``.
        pipeline (Sequence): Processing pipeline. Defaults to ``()``.
        test_mode (bool): Whether the dataset is used for evaluation.
            Defaults to ``split == 'val'``.
        **kwargs: Other keyword arguments of
            :class:`mmpretrain.datasets.BaseDataset` (e.g. ``indices``).
    """

    METAINFO = {'classes': DIGITS_CLASSES}

    def __init__(self,
                 split: str = 'train',
                 val_ratio: float = 0.25,
                 split_seed: int = 0,
                 metainfo: Optional[dict] = None,
                 pipeline: Sequence = (),
                 test_mode: Optional[bool] = None,
                 **kwargs) -> None:
        if split not in ('train', 'val'):
            raise ValueError("`split` should be 'train' or 'val', "
                             f"but got '{split}'")
        if not 0.0 < val_ratio < 1.0:
            raise ValueError('`val_ratio` should be in (0, 1), '
                             f'but got {val_ratio}')
        self.split = split
        self.val_ratio = val_ratio
        self.split_seed = split_seed
        if test_mode is None:
            test_mode = split == 'val'
        # The data comes from scikit-learn, not from a file: ``ann_file`` is
        # empty and ``data_root`` unused.
        super().__init__(
            ann_file='',
            metainfo=metainfo,
            pipeline=pipeline,
            test_mode=test_mode,
            **kwargs)

    @staticmethod
    def split_indices(labels: np.ndarray, val_ratio: float,
                      split_seed: int) -> Tuple[np.ndarray, np.ndarray]:
        """Return ``(train_idx, val_idx)``, stratified by class.

        Every class is shuffled with its own draw from one generator seeded
        with ``split_seed`` and the first ``round(n_c * val_ratio)`` samples
        go to val. Done by hand rather than with
        ``sklearn.model_selection.train_test_split`` so the split cannot
        change with the scikit-learn version.

        Args:
            labels (np.ndarray): Class label of every sample, shape (N, ).
            val_ratio (float): Fraction of each class for validation.
            split_seed (int): Seed of the split.

        Returns:
            tuple[np.ndarray, np.ndarray]: Sorted train and val indices.
        """
        rng = np.random.RandomState(split_seed)
        train_idx: List[np.ndarray] = []
        val_idx: List[np.ndarray] = []
        for cls in np.unique(labels):
            idx = np.flatnonzero(labels == cls)
            idx = idx[rng.permutation(len(idx))]
            n_val = int(round(len(idx) * val_ratio))
            val_idx.append(idx[:n_val])
            train_idx.append(idx[n_val:])
        return np.sort(np.concatenate(train_idx)), np.sort(
            np.concatenate(val_idx))

    def load_data_list(self) -> List[dict]:
        """Load the images and labels of the selected split."""
        # Imported here so that merely importing the module (e.g. to read
        # the class names) does not pay for importing scikit-learn.
        from sklearn.datasets import load_digits

        digits = load_digits()
        labels = digits.target.astype(np.int64)
        # 0..16 grey levels -> 0..255 so standard image normalisation fits.
        images = np.round(digits.images * (255.0 / 16.0)).clip(0, 255)
        images = images.astype(np.uint8)[..., None]

        train_idx, val_idx = self.split_indices(labels, self.val_ratio,
                                                self.split_seed)
        chosen = train_idx if self.split == 'train' else val_idx
        # `digits_index` is the position in scikit-learn's arrays, kept for
        # tracing a sample back; `sample_idx` is reassigned by mmengine.
        return [
            dict(img=images[i], gt_label=int(labels[i]), digits_index=int(i))
            for i in chosen
        ]

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        return [
            f'Split: \t{self.split}',
            f'Validation ratio: \t{self.val_ratio}',
            f'Split seed: \t{self.split_seed}',
        ]
