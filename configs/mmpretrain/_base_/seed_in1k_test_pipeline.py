# The seed's ImageNet evaluation pixels: resize the short edge to 256 with
# PIL (mmcv's `pillow` backend gives torchvision's pixels on PIL images),
# centre crop 224. Inherited by the baseline and B2 `_base_`s.
seed_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
