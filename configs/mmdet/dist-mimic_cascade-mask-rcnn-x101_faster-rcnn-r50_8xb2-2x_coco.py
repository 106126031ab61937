# DIST + mimic (the seed's "DIST+mimic" column, configs/seed_results.yml): the
# DIST config plus the FPN mimic term (P2-P6) of _base_/fpn_mimic.py.
_base_ = [
    './dist_cascade-mask-rcnn-x101_faster-rcnn-r50_8xb2-2x_coco.py',
    './_base_/fpn_mimic.py'
]

model = dict(distill_losses=dict(loss_mimic={{_base_.loss_mimic}}))
