# Recipe of tools/accuracy_study.py (not a model config): the CamVid study on
# one GPU. DeepLabV3+ and PSPNet R18-D8, each without and with the shape
# stream, on CamVid downscaled to 180x240, trained from scratch for 2000
# iterations of batch 16 with AMP, seeds 0 and 1, each run tested on the
# downscaled val split (mIoU, boundary F at 1/2/3/5 px, crop-factor mIoU,
# per-class IoU of the whole image).
#
#   python tools/downscale_camvid.py --src <CamVid folder>    # once: data/camvid-180x240
#   python tools/accuracy_study.py --recipe configs/studies/camvid-gpu-180x240.py
#
# Options on the command line override these (e.g. --jobs, --time-limit).
names = ['deeplabv3plus', 'gscnn-deeplabv3plus', 'pspnet', 'gscnn-pspnet']
configs = [
    'configs/deeplabv3plus/deeplabv3plus_r18-d8_1xb16-2k_camvid-180x240.py',
    'configs/gscnn/gscnn-deeplabv3plus_r18-d8_1xb16-2k_camvid-180x240.py',
    'configs/pspnet/pspnet_r18-d8_1xb16-2k_camvid-180x240.py',
    'configs/gscnn/gscnn-pspnet_r18-d8_1xb16-2k_camvid-180x240.py',
]
seeds = [0, 1]
data_root = 'data/camvid-180x240'
amp = True
# 4 runs side by side on one GPU and 16 CPU cores: each run's training
# process plus 3 data-loader workers. The 4 configs of seed 0 start first.
jobs = 4
num_workers = 3
# Whole study time-boxed to 9 minutes, so that it ends inside a 10-minute
# job: runs still going then are stopped, the report keeps those that finished.
time_limit = 540
# tools/test.py gives the metrics: no validation at the end of training.
train_only_options = ['val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']
work_dir = 'work_dirs/camvid-gpu-180x240'
out = 'docs/benchmarks/camvid-gpu.json'
markdown = 'docs/benchmarks/camvid-gpu.md'
