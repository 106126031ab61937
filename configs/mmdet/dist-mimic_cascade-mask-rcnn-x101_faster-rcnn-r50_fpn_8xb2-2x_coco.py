# DIST + mimic (the seed's "DIST+mimic" column: 41.8 box AP): adds an MSE
# between each student FPN level (P2-P6), through its own trainable 1x1
# conv, and the teacher's, summed over the 5 levels with weight 1.
_base_ = './dist_cascade-mask-rcnn-x101_faster-rcnn-r50_fpn_8xb2-2x_coco.py'

model = dict(
    distill_losses=dict(
        loss_mimic=dict(
            student='neck',
            teacher='neck',
            connector=dict(
                type='FPNAdapter',
                in_channels=256,
                out_channels=256,
                num_levels=5),
            loss=dict(type='MimicLoss', loss_weight=1.0))))
