"""Every seed row's config resolves to the seed's values by default.

One table of the seed's settings per row (teacher weights, student, its
initialisation and dropout, checkpoint selection), from the official code
as summarised in shared/reference/dist_official_code.md; each config is
read with ``Config.fromfile`` and the resolved values are compared with the
row. Recipe values shared by a whole family (optimiser, schedule, loss) are
checked in tests/mmpretrain_recipes/test_recipe_table.py; the seed-protocol
segmentation values are in SEG_PROTOCOL below.
"""
import os.path as osp

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLS = osp.join(REPO, 'configs', 'mmpretrain')
SEG = osp.join(REPO, 'configs', 'mmseg')

# Student initialisation of the seed's students.
TV_RESNET = 'torchvision'  # no zero-init residual, PyTorch Linear init
TV_MOBILENET_V2 = 'torchvision-mbv2'  # Normal(0, 0.01) Linear, Dropout 0.2
TIMM_EFFNET = 'timm-effnet'  # Linear U(+-1/sqrt(1000)), no dropout
OURS = 'ours'  # no seed definition to follow (MobileNetV1, CIFAR nets)

BEST_TOP1 = ('accuracy/top1', 1)  # (metric, validation every epoch)
MMPT_RSB = ('https://download.openmmlab.com/mmclassification/v0/resnet/'
            'resnet50_8xb256-rsb-a1-600e_in1k_20211228-20e21305.pth')
SWIN_L = ('https://download.openmmlab.com/mmclassification/v0/'
          'swin-transformer/convert/'
          'swin_large_patch4_window7_224_22kto1k-5f0996db.pth')

# config: (teacher checkpoint, converter, student backbone (type, depth or
# arch), student init, head dropout, checkpoint selection)
SEED_ROWS = {
    'dist_r34_r18_8xb32-100e_in1k.py':
    ('torchvision://resnet34', 'torchvision_resnet', ('ResNet', 18), TV_RESNET,
     None, BEST_TOP1),
    'dist_r50_mobilenet-v1_8xb32-100e_in1k.py':
    ('torchvision://resnet50', 'torchvision_resnet', ('MobileNetV1', None),
     OURS, None, BEST_TOP1),
    'dist_r50_r18_8xb32-100e_in1k.py':
    ('torchvision://resnet50', 'torchvision_resnet', ('ResNet', 18), TV_RESNET,
     None, BEST_TOP1),
    'dist_r101_r18_8xb32-100e_in1k.py': ('torchvision://resnet101',
                                         'torchvision_resnet', ('ResNet', 18),
                                         TV_RESNET, None, BEST_TOP1),
    'dist_r152_r18_8xb32-100e_in1k.py': ('torchvision://resnet152',
                                         'torchvision_resnet', ('ResNet', 18),
                                         TV_RESNET, None, BEST_TOP1),
    'dist_r50_r34_8xb32-100e_in1k.py':
    ('torchvision://resnet50', 'torchvision_resnet', ('ResNet', 34), TV_RESNET,
     None, BEST_TOP1),
    'dist_r101_r34_8xb32-100e_in1k.py': ('torchvision://resnet101',
                                         'torchvision_resnet', ('ResNet', 34),
                                         TV_RESNET, None, BEST_TOP1),
    'dist_r152_r34_8xb32-100e_in1k.py': ('torchvision://resnet152',
                                         'torchvision_resnet', ('ResNet', 34),
                                         TV_RESNET, None, BEST_TOP1),
    'kd_r34_r18_8xb32-100e_in1k.py':
    ('torchvision://resnet34', 'torchvision_resnet', ('ResNet', 18), TV_RESNET,
     None, BEST_TOP1),
    'kd_r50_r18_8xb32-100e_in1k.py': ('torchvision://resnet50',
                                      'torchvision_resnet', ('ResNet', 18),
                                      TV_RESNET, None, BEST_TOP1),
    'kd_r101_r18_8xb32-100e_in1k.py': ('torchvision://resnet101',
                                       'torchvision_resnet', ('ResNet', 18),
                                       TV_RESNET, None, BEST_TOP1),
    'kd_r152_r18_8xb32-100e_in1k.py': ('torchvision://resnet152',
                                       'torchvision_resnet', ('ResNet', 18),
                                       TV_RESNET, None, BEST_TOP1),
    'kd_r50_r34_8xb32-100e_in1k.py': ('torchvision://resnet50',
                                      'torchvision_resnet', ('ResNet', 34),
                                      TV_RESNET, None, BEST_TOP1),
    'kd_r101_r34_8xb32-100e_in1k.py': ('torchvision://resnet101',
                                       'torchvision_resnet', ('ResNet', 34),
                                       TV_RESNET, None, BEST_TOP1),
    'kd_r152_r34_8xb32-100e_in1k.py': ('torchvision://resnet152',
                                       'torchvision_resnet', ('ResNet', 34),
                                       TV_RESNET, None, BEST_TOP1),
    # B2: the seed's timm RSB-A1 file is not recorded; mmpretrain's own
    # RSB-A1 training (80.12) is the documented stand-in.
    'dist_r50-sb_r18_8xb96-450e_in1k.py': (MMPT_RSB, None, ('ResNet', 18),
                                           TV_RESNET, None, BEST_TOP1),
    'dist_r50-sb_r34_8xb96-450e_in1k.py': (MMPT_RSB, None, ('ResNet', 34),
                                           TV_RESNET, None, BEST_TOP1),
    'dist_r50-sb_mobilenet-v2_8xb96-450e_in1k.py':
    (MMPT_RSB, None, ('MobileNetV2', None), TV_MOBILENET_V2, 0.2, BEST_TOP1),
    'dist_r50-sb_efficientnet-b0_8xb96-450e_in1k.py':
    (MMPT_RSB, None, ('EfficientNet', 'b0'), TIMM_EFFNET, None, BEST_TOP1),
    'dist_swin-l_r50_8xb96-450e_in1k.py': (SWIN_L, None, ('ResNet', 50),
                                           TV_RESNET, None, BEST_TOP1),
    'dist_wrn-40-2_wrn-40-1_1xb64-240e_cifar100.py':
    ('data/cifar_ckpts/wrn_40_2_vanilla/ckpt_epoch_240.pth', 'cifar_backbone',
     ('CIFARWideResNet', None), OURS, None, BEST_TOP1),
    'dist_resnet56_resnet20_1xb64-240e_cifar100.py':
    ('data/cifar_ckpts/resnet56_vanilla/ckpt_epoch_240.pth', 'cifar_backbone',
     ('CIFARResNet', 'resnet20'), OURS, None, BEST_TOP1),
    'dist_resnet32x4_resnet8x4_1xb64-240e_cifar100.py':
    ('data/cifar_ckpts/resnet32x4_vanilla/ckpt_epoch_240.pth',
     'cifar_backbone', ('CIFARResNet', 'resnet8x4'), OURS, None, BEST_TOP1),
    'dist_resnet50_mobilenet-v2_1xb64-240e_cifar100.py':
    ('data/cifar_ckpts/ResNet50_vanilla/ckpt_epoch_240.pth', 'cifar_backbone',
     ('CIFARMobileNetV2', None), OURS, None, BEST_TOP1),
    'dist_resnet32x4_shufflenet-v1_1xb64-240e_cifar100.py':
    ('data/cifar_ckpts/resnet32x4_vanilla/ckpt_epoch_240.pth',
     'cifar_backbone', ('CIFARShuffleNetV1', None), OURS, None, BEST_TOP1),
    'dist_resnet32x4_shufflenet-v2_1xb64-240e_cifar100.py':
    ('data/cifar_ckpts/resnet32x4_vanilla/ckpt_epoch_240.pth',
     'cifar_backbone', ('CIFARShuffleNetV2', None), OURS, None, BEST_TOP1),
}


def student_init(student) -> str:
    backbone, head = student.backbone, student.head
    init = head.get('init_cfg', 'default')
    if backbone.type == 'ResNet':
        assert backbone.zero_init_residual is False
        assert init is None  # PyTorch's Linear init, as torchvision's
        return TV_RESNET
    if backbone.type == 'MobileNetV2':
        assert init == 'default'  # LinearClsHead's Normal(0, 0.01)
        return TV_MOBILENET_V2
    if backbone.type == 'EfficientNet':
        bound = 1000**-0.5
        assert init == dict(
            type='Uniform', layer='Linear', a=-bound, b=bound, bias=0)
        return TIMM_EFFNET
    return OURS


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(SEED_ROWS))
def test_seed_row_config_resolves_to_the_seed(name):
    ckpt, converter, (kind, size), init, dropout, best = SEED_ROWS[name]
    cfg = Config.fromfile(osp.join(CLS, name))
    assert cfg.model.teacher_ckpt == ckpt
    assert cfg.model.get('teacher_ckpt_converter') == converter
    backbone = cfg.model.student.backbone
    assert backbone.type == kind
    if size is not None:
        assert backbone.get('depth', backbone.get('arch')) == size
    assert student_init(cfg.model.student) == init
    head = cfg.model.student.head
    assert head.get('dropout_rate') == dropout
    if dropout is not None:
        assert head.type == 'DropoutLinearClsHead'
    # The seed's teachers ran in fp32 (README: teacher precision).
    assert cfg.model.teacher_autocast is None
    metric, interval = best
    hook = cfg.default_hooks.checkpoint
    assert (hook.save_best, hook.rule) == (metric, 'greater')
    assert cfg.train_cfg.val_interval == interval == hook.interval


@pytest.mark.slow
def test_every_seed_config_is_in_the_table():
    """New classification configs are either a seed row or a variant."""
    import glob
    names = {osp.basename(p) for p in glob.glob(osp.join(CLS, '*.py'))}
    variants = {n for n in names if '-mmpretrain_' in n}
    no_recipe = {'dist_swin-l_swin-t_16xb64-300e_in1k.py'}
    assert names - variants - no_recipe == set(SEED_ROWS)
    for variant in variants:
        cfg = Config.fromfile(osp.join(CLS, variant))
        assert cfg.model.teacher_ckpt.startswith(
            'https://download.openmmlab.com/mmclassification/')
        assert cfg.model.teacher_ckpt_converter is None
        seed = Config.fromfile(
            osp.join(CLS, variant.replace('-mmpretrain_', '_')))
        # Only the teacher's weights differ from the seed-protocol config.
        seed.model.teacher_ckpt = cfg.model.teacher_ckpt
        seed.model.teacher_ckpt_converter = None
        assert seed.model.to_dict() == cfg.model.to_dict()


def test_built_seed_student_has_the_torchvision_init():
    from mmengine.registry import MODELS, DefaultScope

    import distkd_mm.models  # noqa: F401
    cfg = Config.fromfile(osp.join(CLS, 'dist_r34_r18_8xb32-100e_in1k.py'))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        student = MODELS.build(cfg.model.student)
    student.init_weights()
    last = student.backbone.layer4[1].bn2.weight
    assert (last == 1).all()  # not zero-initialised
    fc = student.head.fc.weight
    # PyTorch's Linear init: U(-1/sqrt(512), 1/sqrt(512)), std ~0.0255;
    # mmpretrain's Normal(0, 0.01) would give ~0.01.
    assert fc.abs().max() <= 512**-0.5
    assert 0.02 < fc.std() < 0.03


# The seed's Cityscapes protocol (DIST_KD segmentation/train_kd.py).
SEG_PROTOCOL = dict(
    iters=40000,
    images_per_gpu=2,
    gpus=8,
    lr=0.02,
    momentum=0.9,
    weight_decay=5e-4,
    poly_power=0.9,
    poly_floor=1e-4,
    val_every=400,
    best='mIoU',
    mean=[104.008, 116.669, 122.679],
    std=[1.0, 1.0, 1.0],
    bgr=True,
    scales=[0.5 + k / 10 for k in range(16)],
    crop=(512, 1024),
    stem=128,
    student_depth=18,
    teacher_depth=101,
    teacher_ckpt='data/cirkd_ckpts/deeplabv3_resnet101_citys_best_model.pth',
    dist_weights=(1.0, 0.4))
SEG_ROWS = {
    'dist_deeplabv3-r101_deeplabv3-r18_8xb2-40k_cityscapes-512x1024.py':
    ('SeedASPPHead', 128),
    'dist_deeplabv3-r101_pspnet-r18_8xb2-40k_cityscapes-512x1024.py':
    ('PSPHead', 128),
}


@pytest.mark.parametrize('name', sorted(SEG_ROWS))
def test_seed_protocol_seg_config_resolves_to_the_seed(name):
    head_type, channels = SEG_ROWS[name]
    seed = SEG_PROTOCOL
    cfg = Config.fromfile(osp.join(SEG, name))
    assert cfg.train_cfg.max_iters == seed['iters']
    assert cfg.train_cfg.val_interval == seed['val_every']
    assert cfg.train_dataloader.batch_size == seed['images_per_gpu']
    assert cfg.auto_scale_lr.base_batch_size == (
        seed['images_per_gpu'] * seed['gpus'])
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum,
            opt.weight_decay) == ('SGD', seed['lr'], seed['momentum'],
                                  seed['weight_decay'])
    assert 'paramwise_cfg' not in cfg.optim_wrapper  # one lr, decay on all
    (poly, ) = cfg.param_scheduler
    assert (poly.type, poly.power, poly.eta_min,
            poly.end) == ('PolyLR', seed['poly_power'], seed['poly_floor'],
                          seed['iters'])
    hook = cfg.default_hooks.checkpoint
    assert (hook.save_best, hook.rule,
            hook.interval) == (seed['best'], 'greater', seed['val_every'])
    pre = cfg.model.student.data_preprocessor
    assert (pre.mean, pre.std) == (seed['mean'], seed['std'])
    assert pre.bgr_to_rgb is not seed['bgr']
    steps = {s.type: s for s in cfg.train_dataloader.dataset.pipeline}
    assert 'PhotoMetricDistortion' not in steps
    # Whole-pixel target sizes: within 1 px of the seed's factor x 2048.
    factors = [w / 2048 for w, _ in steps['RandomChoiceResize'].scales]
    assert factors == pytest.approx(seed['scales'], abs=1 / 2048)
    assert steps['RandomCrop'].crop_size == seed['crop']
    assert steps['RandomCrop'].cat_max_ratio == 1.0
    student = cfg.model.student
    assert student.backbone.type == 'ResNetV1s'
    assert student.backbone.stem_channels == seed['stem']
    assert student.backbone.depth == seed['student_depth']
    assert student.decode_head.type == head_type
    assert student.decode_head.channels == channels
    assert student.decode_head.align_corners is True
    assert student.decode_head.loss_decode.avg_non_ignore is True
    teacher = cfg.model.teacher
    assert teacher.backbone.type == 'ResNetV1s'
    assert teacher.backbone.depth == seed['teacher_depth']
    assert teacher.decode_head.type == 'SeedASPPHead'
    assert cfg.model.teacher_ckpt == seed['teacher_ckpt']
    assert cfg.model.teacher_ckpt_converter == 'cirkd_segmentation'
    taps = cfg.model.distill_losses
    assert (taps.loss_dist.loss.loss_weight,
            taps.loss_dist_aux.loss.loss_weight) == seed['dist_weights']
    assert cfg.model.teacher_autocast is None


@pytest.mark.parametrize('name', [
    'dist_retinanet-x101_retinanet-r50_8xb2-2x_coco.py',
    'dist-mimic_retinanet-x101_retinanet-r50_8xb2-2x_coco.py',
    'dist_cascade-mask-rcnn-x101_faster-rcnn-r50_8xb2-2x_coco.py',
    'dist-mimic_cascade-mask-rcnn-x101_faster-rcnn-r50_8xb2-2x_coco.py',
])
def test_detection_seed_rows_run_the_teacher_in_fp32(name):
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'mmdet', name))
    assert cfg.model.teacher_autocast is None
