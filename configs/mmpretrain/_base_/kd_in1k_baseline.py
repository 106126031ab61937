# The seed's KD (T=4) baseline (resnet_kdt4.yaml): the recipe of
# dist_in1k_baseline.py with KL distillation at tau 4, weight 1.0, and the
# student's CE down-weighted to 0.9.
_base_ = './dist_in1k_baseline.py'

model = dict(
    student=dict(head=dict(loss=dict(loss_weight=0.9))),
    distill_losses=dict(
        _delete_=True,
        loss_kd=dict(
            student='head.fc',
            teacher='head.fc',
            loss=dict(type='KDLoss', tau=4.0, loss_weight=1.0))))
