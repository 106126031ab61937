"""Behaviour of DigitsDataset: the split, the labels and the pipeline."""
import numpy as np
import pytest

pytest.importorskip('mmpretrain')
pytest.importorskip('sklearn')

from mmpretrain.registry import DATASETS  # noqa: E402

from distkd_mm.datasets import DigitsDataset  # noqa: E402

NUM_DIGITS = 1797


def _labels(dataset: DigitsDataset) -> np.ndarray:
    return np.array(
        [dataset.get_data_info(i)['gt_label'] for i in range(len(dataset))])


def _ids(dataset: DigitsDataset) -> set:
    return {
        dataset.get_data_info(i)['digits_index']
        for i in range(len(dataset))
    }


@pytest.fixture(scope='module')
def splits():
    """The default train and val splits (read-only in the tests)."""
    return DigitsDataset(split='train'), DigitsDataset(split='val')


@pytest.mark.slow
def test_sizes_and_metainfo(splits):
    train, val = splits
    assert len(train) + len(val) == NUM_DIGITS
    # 25 % per class, rounded per class.
    assert abs(len(val) - NUM_DIGITS * 0.25) <= 10
    assert train.CLASSES == tuple(str(i) for i in range(10))
    assert val.metainfo['classes'] == train.CLASSES
    assert not train.test_mode and val.test_mode


def test_split_disjoint_stratified_and_deterministic(splits):
    train, val = splits
    train_ids, val_ids = _ids(train), _ids(val)
    assert not train_ids & val_ids
    assert train_ids | val_ids == set(range(NUM_DIGITS))

    train_labels, val_labels = _labels(train), _labels(val)
    assert set(train_labels) == set(val_labels) == set(range(10))
    for cls in range(10):
        n_train = int((train_labels == cls).sum())
        n_val = int((val_labels == cls).sum())
        # Each class is split in the same 75/25 proportion (+- rounding).
        assert abs(n_val - 0.25 * (n_train + n_val)) <= 0.5

    # Same split seed, same split; the split does not follow any global
    # seed, so a new instance made after drawing random numbers agrees.
    np.random.seed(123)
    np.random.rand(10)
    assert _ids(DigitsDataset(split='val')) == val_ids
    other = _ids(DigitsDataset(split='val', split_seed=1))
    assert other != val_ids and len(other) == len(val_ids)


def test_images_are_uint8_and_labels_match_sklearn(splits):
    from sklearn.datasets import load_digits
    digits = load_digits()
    _, val = splits
    for i in (0, len(val) // 2, len(val) - 1):
        info = val.get_data_info(i)
        img = info['img']
        assert img.dtype == np.uint8 and img.shape == (8, 8, 1)
        idx = info['digits_index']
        assert info['gt_label'] == int(digits.target[idx])
        expected = np.round(digits.images[idx] * 255 / 16)
        np.testing.assert_array_equal(img[..., 0], expected)
    assert max(
        int(val.get_data_info(i)['img'].max()) for i in range(len(val))) == 255


def test_built_from_registry_through_mmpretrain_pipeline():
    dataset = DATASETS.build(
        dict(
            type='DigitsDataset',
            split='train',
            pipeline=[
                dict(type='RandomCrop', crop_size=8, padding=1),
                dict(type='PackInputs'),
            ]))
    assert isinstance(dataset, DigitsDataset)
    sample = dataset[0]
    inputs = sample['inputs']
    assert tuple(inputs.shape) == (1, 8, 8)
    label = sample['data_samples'].gt_label
    assert label.tolist() == [dataset.get_data_info(0)['gt_label']]
    assert dataset.get_gt_labels().shape == (len(dataset), )


@pytest.mark.parametrize('split', ['test', 'Train', ''])
def test_bad_split_raises(split):
    with pytest.raises(
            ValueError,
            match="`split` should be 'train' or "
            f"'val', but got '{split}'"):
        DigitsDataset(split=split)


def test_bad_val_ratio_raises():
    with pytest.raises(ValueError, match='val_ratio'):
        DigitsDataset(val_ratio=1.0)
