# mmseg's 20k schedule (SGD lr 0.01, momentum 0.9, weight decay 5e-4, poly
# decay to 1e-4) shortened to 2000 iterations, the decay ending there; one
# checkpoint (and validation) at the end.
_base_ = ['mmseg::_base_/schedules/schedule_20k.py']
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=2000, by_epoch=False)
]
train_cfg = dict(max_iters=2000, val_interval=2000)
