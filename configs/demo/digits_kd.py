# KD student (Hinton et al.): the DIST setup with classic logit KD instead
# of DIST, and the student's CE weighted 0.9 as in the seed's KD baseline.
_base_ = './digits_dist.py'

model = dict(
    student=dict(head=dict(loss=dict(loss_weight=0.9))),
    distill_losses=dict(
        _delete_=True,
        loss_kd=dict(
            student='head.fc',
            teacher='head.fc',
            loss=dict(type='KDLoss', tau=4.0, loss_weight=1.0))))
