# The seed's Cityscapes protocol (DIST_KD `segmentation/train_kd.py` on
# CIRKD's data code), shared by the seed-protocol leaves: 40k iterations,
# 16 images per iteration (2 per GPU x 8 GPUs), SGD lr 0.02, momentum 0.9,
# weight decay 5e-4 on every parameter, poly decay (power 0.9) to a 1e-4
# floor, all parameters at one lr; BGR images minus the mean (104.008,
# 116.669, 122.679) without std division; random scale 0.5 + k/10
# (k = 0..15) of the full image, random 512x1024 crop, horizontal flip, no
# colour jitter; evaluation on the full 1024x2048 val images every 400
# iterations (single scale, logits upsampled with align_corners=True),
# keeping the best mIoU. Not a runnable config: the leaves add the model.
_base_ = [
    'mmseg::_base_/datasets/cityscapes.py', 'mmseg::_base_/default_runtime.py'
]

# ResNetV1s (below) is registered by `distkd_mm.models.seg`, which the
# seed teacher base (./seed_deeplabv3-r101_teacher_cityscapes.py) imports.
crop_size = (512, 1024)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[104.008, 116.669, 122.679],
    std=[1.0, 1.0, 1.0],
    bgr_to_rgb=False,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomChoiceResize',
        scales=[(2048 * (5 + k) // 10, 1024 * (5 + k) // 10)
                for k in range(16)],
        keep_ratio=True),
    # The seed crops anywhere: no cap on one class's share of the crop.
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=5e-4),
    clip_grad=None)
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-4,
        power=0.9,
        begin=0,
        end=40000,
        by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=40000, val_interval=400)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=400,
        max_keep_ckpts=1,
        save_best='mIoU',
        rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
auto_scale_lr = dict(enable=False, base_batch_size=16)

# The students' norm layers and decode-head loss: SyncBN, and CE averaged
# over non-ignored pixels, as the seed's.
student_norm_cfg = dict(type='SyncBN', requires_grad=True)
student_ce = dict(type='CrossEntropyLoss', avg_non_ignore=True)
# The students' backbone: the seed's deep-stem (64-64-128) ResNet-18 with
# CIRKD's ImageNet weights (`resnet18-imagenet.pth`, converted with
# tools/convert_cirkd_seg.py), SyncBN, output stride 8.
student_backbone = dict(
    type='ResNetV1s',
    depth=18,
    stem_channels=128,
    num_stages=4,
    out_indices=(0, 1, 2, 3),
    dilations=(1, 1, 2, 4),
    strides=(1, 2, 1, 1),
    contract_dilation=True,
    norm_cfg=student_norm_cfg,
    norm_eval=False,
    style='pytorch',
    init_cfg=dict(
        type='Pretrained',
        checkpoint='data/cirkd_ckpts/resnet18-imagenet_mmseg.pth',
        prefix='backbone.'))
# The auxiliary FCN head on layer3 (256 -> 64 channels), CE weight 0.4.
student_aux_head = dict(
    type='FCNHead',
    in_channels=256,
    in_index=2,
    channels=64,
    num_convs=1,
    concat_input=False,
    dropout_ratio=0.1,
    num_classes=19,
    norm_cfg=student_norm_cfg,
    align_corners=True,
    loss_decode=dict(student_ce, loss_weight=0.4))
