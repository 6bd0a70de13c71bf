"""tools/accuracy_study.py on two tiny configs (plain and GSCNN), one seed."""
import importlib.util
import json
import os.path as osp

from mmengine.config import Config

from helpers import tiny_model, tiny_runner_config, write_camvid_layout

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def write_config(path, data_root, gscnn):
    cfg = tiny_runner_config('unused', data_root, model=tiny_model('fcn', gscnn=gscnn),
                             max_iters=2, interval=2)
    cfg.val_evaluator = [dict(type='IoUMetric', iou_metrics=['mIoU']),
                         dict(type='BoundaryFScore', tolerances=(1, 2)),
                         dict(type='CropIoUMetric', crop_factors=(0, 4), class_keys=True)]
    cfg.test_dataloader, cfg.test_evaluator = cfg.val_dataloader, cfg.val_evaluator
    cfg.test_cfg = dict(type='TestLoop')
    cfg.pop('work_dir')
    cfg.pop('experiment_name')
    Config(cfg.to_dict()).dump(str(path))
    return str(path)


def test_accuracy_study_end_to_end(tmp_path):
    data_root = write_camvid_layout(str(tmp_path / 'data'))
    configs = [write_config(tmp_path / 'plain.py', data_root, False),
               write_config(tmp_path / 'gscnn.py', data_root, True)]
    spec = importlib.util.spec_from_file_location(
        'accuracy_study', osp.join(REPO, 'tools', 'accuracy_study.py'))
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    out, md = tmp_path / 'study.json', tmp_path / 'study.md'
    argv = ['--configs', *configs, '--names', 'plain', 'gscnn', '--seeds', '3',
            '--work-dir', str(tmp_path / 'work'), '--out', str(out), '--markdown', str(md),
            '--cfg-options', 'train_cfg.max_iters=2']
    table = study.main(argv)
    result = json.loads(out.read_text())
    for name in ('plain', 'gscnn'):
        metrics = result['per_seed'][name]['3']
        for key in ('mIoU', 'mBF@1px', 'mBF@2px', 'mIoU@crop0', 'mIoU@crop4', 'IoU.bar@crop0'):
            assert key in metrics, key
            assert table[name][key][0] == metrics[key]  # one seed: mean = value
        ckpt = tmp_path / 'work' / name / 'seed3' / 'iter_2.pth'
        assert ckpt.is_file()
        assert 'randomness.seed=3' in (tmp_path / 'work' / name / 'seed3' / 'study.log').read_text()
    text = md.read_text()
    assert '| metric | plain | gscnn |' in text and '| mBF@1px |' in text
    # a second call reuses the finished runs instead of training again
    ckpt.unlink()
    assert study.main(argv) == table
    assert not ckpt.exists()
