# DIST + mimic (the seed's "DIST+mimic" column, configs/seed_results.yml): the
# DIST config plus the FPN mimic term of _base_/fpn_mimic.py.
_base_ = [
    './dist_retinanet-x101_retinanet-r50_8xb2-2x_coco.py',
    './_base_/fpn_mimic.py'
]

model = dict(distill_losses=dict(loss_mimic={{_base_.loss_mimic}}))
