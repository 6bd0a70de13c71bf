"""The main job (`make demo`): baseline against GSCNN on the built-in data.

    python tools/demo.py [--out-dir demo_out] [--iters 600] [--data-dir data/synthetic]

1. writes the SyntheticStreet dataset if it is missing (no download);
2. trains the baseline (configs/deeplabv3plus/deeplabv3plus_r18-d8-w32_1xb4-600it_synthetic-96x128.py)
   and the same model with the shape stream (configs/gscnn/gscnn-...) with
   tools/train.py, showing mmengine's progress;
3. evaluates both with tools/test.py (mIoU, boundary F-score, crop mIoU,
   per-class IoU on the whole image);
4. prints and saves a table: mIoU, boundary F at each tolerance, thin-class
   IoU, training time per iteration, peak memory, parameters;
5. writes pictures (image | prediction | boundary map) of validation images
   for both models with tools/infer.py.

Everything runs through the same configs and tools as real training
(:mod:`mmgscnn.experiments.demo`).
"""
import argparse

from mmgscnn.experiments.demo import run_demo


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='baseline vs GSCNN on the built-in data')
    p.add_argument('--out-dir', default='demo_out', help='work dirs, table and pictures')
    p.add_argument('--data-dir', default='data/synthetic', help='dataset (written if missing)')
    p.add_argument('--iters', type=int, default=None,
                   help='training iterations per model (default: the configs\' 600)')
    p.add_argument('--batch-size', type=int, default=None, help='training batch size')
    p.add_argument('--pictures', type=int, default=4, help='validation images to draw')
    p.add_argument('--num-train', type=int, default=160, help='images if data is written')
    p.add_argument('--num-val', type=int, default=40, help='images if data is written')
    p.add_argument('--device', default='cpu', help='device of the inference pictures')
    args = p.parse_args(argv)
    for key in ('iters', 'batch_size'):
        if getattr(args, key) is not None and getattr(args, key) < 1:
            p.error(f'--{key.replace("_", "-")} must be >= 1, got {getattr(args, key)}')
    return args


def main(argv=None):
    a = parse_args(argv)
    return run_demo(a.out_dir, a.data_dir, a.iters, a.batch_size, a.pictures, a.num_train,
                    a.num_val, a.device)


if __name__ == '__main__':
    main()
