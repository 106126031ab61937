# The seed's KD (T=4) baseline (resnet_kdt4.yaml) as a change to a DIST
# config: KL distillation on the logits at tau 4 (KDLoss, weight 1) in place
# of DIST, and the student's CE down-weighted to 0.9. `loss_kd` is the `kd`
# preset of `--teacher` (distkd_mm/apis/attach.py reads this file). Not a
# runnable config: a KD leaf lists it after its DIST sibling in `_base_` and
# sets `model = {{_base_.model_kd}}` (the sibling loads the plugin).
loss_kd = dict(
    student='head', teacher='head', loss=dict(type='KDLoss', tau=4.0))
model_kd = dict(
    student=dict(head=dict(loss=dict(loss_weight=0.9))),
    distill_losses=dict(_delete_=True, loss_kd=loss_kd))
