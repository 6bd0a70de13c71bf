"""Training behaviour: overfitting with all losses, log keys, resume,
load_from a baseline checkpoint, and the train/test command-line tools."""
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint
from mmengine.structures import PixelData

from mmseg.registry import HOOKS, MODELS
from mmseg.structures import SegDataSample

from helpers import draw_scene, tiny_model, tiny_runner_config, write_camvid_layout

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
LOSS_KEYS = ('decode.loss_ce', 'decode.loss_boundary', 'decode.loss_attention',
             'decode.loss_dual_task')


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, 'tools', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_gscnn_overfits_with_all_four_losses():
    torch.manual_seed(0)
    model = MODELS.build(tiny_model('sepaspp'))
    model.init_weights()
    model.train()
    rng = np.random.default_rng(0)
    imgs, samples = [], []
    for _ in range(4):
        img, label = draw_scene(rng, 48, 64)
        imgs.append(torch.from_numpy(img).permute(2, 0, 1).contiguous())
        s = SegDataSample(metainfo=dict(img_shape=(48, 64), ori_shape=(48, 64)))
        s.gt_sem_seg = PixelData(data=torch.from_numpy(label).long()[None])
        samples.append(s)
    data = model.data_preprocessor(dict(inputs=imgs, data_samples=samples), True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    history = []
    for _ in range(80):
        losses = model(**data, mode='loss')
        assert all(k in losses for k in LOSS_KEYS)
        total = sum(v for k, v in losses.items() if 'loss' in k)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append({k: losses[k].item() for k in LOSS_KEYS})
    start = sum(history[0].values())
    end = sum(history[-1].values())
    assert end < 0.35 * start, (history[0], history[-1])
    for key in ('decode.loss_ce', 'decode.loss_boundary'):
        assert history[-1][key] < 0.6 * history[0][key], key
    # The boundary classifier starts near 0 (probability 0.5 < 0.8): no pixel
    # passes the attention threshold at first; once boundaries are learnt, some do.
    assert history[0]['decode.loss_attention'] == 0
    assert history[-1]['decode.loss_attention'] > 0


def test_loss_weights_and_switches_from_config():
    weights = dict(loss_boundary=dict(type='BoundaryBCELoss', loss_weight=5.0),
                   loss_attention=None,
                   loss_dual_task=dict(type='DualTaskLoss', loss_weight=3.0,
                                       loss_name='loss_dt'))
    model = MODELS.build(tiny_model('fcn', head_kwargs=weights))
    data = _batch(model)
    losses = model(**data, mode='loss')
    assert 'decode.loss_attention' not in losses and 'decode.loss_dt' in losses
    reference = MODELS.build(tiny_model('fcn'))
    reference.load_state_dict(model.state_dict())
    torch.manual_seed(0)
    ref = reference(**data, mode='loss')
    torch.manual_seed(0)
    losses = model(**data, mode='loss')
    torch.testing.assert_close(losses['decode.loss_boundary'],
                               ref['decode.loss_boundary'] * 5.0 / 20.0)
    torch.testing.assert_close(losses['decode.loss_dt'], ref['decode.loss_dual_task'] * 3.0)


def test_boundary_targets_from_gt_edge_map():
    model = MODELS.build(tiny_model('fcn', head_kwargs=dict(
        boundary_target=dict(source='gt_edge_map'))))
    data = _batch(model)
    with pytest.raises(KeyError, match="add dict\\(type='GenerateEdge'\\)"):
        model(**data, mode='loss')
    for s in data['data_samples']:
        edge = torch.zeros_like(s.gt_sem_seg.data)
        edge[..., 10:12] = 1
        s.gt_edge_map = PixelData(data=edge)
    head = model.decode_head
    label = head.decoder._stack_batch_gt(data['data_samples']).squeeze(1)
    target, valid = head.boundary_targets(label, data['data_samples'])
    assert target[..., 10:12].all() and target.sum() == target[..., 10:12].numel()
    assert torch.isfinite(model(**data, mode='loss')['decode.loss_boundary'])


def _batch(model, h=32, w=48):
    rng = np.random.default_rng(1)
    imgs, samples = [], []
    for _ in range(2):
        img, label = draw_scene(rng, h, w)
        imgs.append(torch.from_numpy(img).permute(2, 0, 1).contiguous())
        s = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
        s.gt_sem_seg = PixelData(data=torch.from_numpy(label).long()[None])
        samples.append(s)
    return model.data_preprocessor(dict(inputs=imgs, data_samples=samples), True)


def test_each_loss_is_logged_under_its_name(tmp_path):
    data_root = write_camvid_layout(str(tmp_path / 'data'))
    cfg = tiny_runner_config(tmp_path / 'work', data_root, max_iters=2, interval=2,
                             val=False)
    cfg.log_level = 'INFO'
    runner = Runner.from_cfg(cfg)
    runner.train()
    scalars = runner.message_hub.log_scalars
    for key in LOSS_KEYS:
        assert f'train/{key}' in scalars, sorted(scalars)
    log_files = list((tmp_path / 'work').glob('*/*.log'))
    text = log_files[0].read_text()
    for key in LOSS_KEYS:
        assert key + ':' in text


@HOOKS.register_module(force=True)
class InterruptForTest(Hook):
    """Simulates a crash right after the checkpoint of iteration ``at``."""
    priority = 'LOWEST'

    def __init__(self, at):
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.at:
            raise KeyboardInterrupt('simulated interruption')


def test_resume_after_interruption_matches_uninterrupted(tmp_path):
    data_root = write_camvid_layout(str(tmp_path / 'data'))
    full = Runner.from_cfg(tiny_runner_config(tmp_path / 'full', data_root, max_iters=6,
                                              interval=3, val=False))
    full.train()

    cfg = tiny_runner_config(tmp_path / 'cut', data_root, max_iters=6, interval=3, val=False)
    cfg.custom_hooks = [dict(type='InterruptForTest', at=3)]
    with pytest.raises(KeyboardInterrupt):
        Runner.from_cfg(cfg).train()
    assert (tmp_path / 'cut' / 'iter_3.pth').is_file()
    assert not (tmp_path / 'cut' / 'iter_6.pth').exists()

    cfg = tiny_runner_config(tmp_path / 'cut', data_root, max_iters=6, interval=3, val=False)
    cfg.resume = True
    resumed = Runner.from_cfg(cfg)
    resumed.train()
    assert resumed.iter == full.iter == 6
    assert resumed.optim_wrapper.get_lr() == full.optim_wrapper.get_lr()
    final = _load_checkpoint(str(tmp_path / 'cut' / 'iter_6.pth'))
    assert final['meta']['iter'] == 6


@pytest.mark.parametrize('decoder', ['sepaspp', 'psp'])
def test_load_from_baseline_checkpoint(tmp_path, decoder, capsys):
    data_root = write_camvid_layout(str(tmp_path / 'data'))
    base = Runner.from_cfg(tiny_runner_config(
        tmp_path / 'base', data_root, model=tiny_model(decoder, gscnn=False),
        max_iters=2, interval=2, val=False))
    base.train()
    ckpt = str(tmp_path / 'base' / 'iter_2.pth')
    baseline = _load_checkpoint(ckpt)['state_dict']

    cfg = tiny_runner_config(tmp_path / 'gscnn', data_root, model=tiny_model(decoder),
                             max_iters=2, interval=2, val=False)
    cfg.load_from = ckpt
    cfg.log_level = 'INFO'
    runner = Runner.from_cfg(cfg)
    runner.load_or_resume()
    state = runner.model.state_dict()
    for key, value in baseline.items():
        if key.startswith('decode_head.'):
            mine = state['decode_head.decoder.' + key[len('decode_head.'):]]
        else:
            mine = state[key]
        if key == 'decode_head.bottleneck.conv.weight':  # ASPP: one more branch
            assert torch.equal(mine[:, :value.shape[1]], value)
            assert mine[:, value.shape[1]:].abs().sum() == 0
        else:
            assert torch.equal(mine, value), key
    log = next((tmp_path / 'gscnn').glob('*/*.log')).read_text()
    assert 'GatedShapeHead: loading a plain decode head checkpoint' in log
    assert 'shape_stream.input_conv' in log and 'fusion.branch' in log
    printed = capsys.readouterr().out  # mmengine prints its own key report
    assert 'missing keys in source state_dict' in printed
    assert 'decode_head.shape_stream.' in printed and 'decode_head.fusion.' in printed
    assert 'unexpected key' not in printed
    runner.train()  # and it trains from there


def _write_config(path, cfg):
    Config(cfg.to_dict() if hasattr(cfg, 'to_dict') else cfg).dump(str(path))
    return str(path)


def test_train_and_test_tools(tmp_path):
    data_root = write_camvid_layout(str(tmp_path / 'data'))
    cfg = tiny_runner_config(tmp_path / 'unused', data_root, max_iters=2, interval=2)
    cfg.val_evaluator = [dict(type='IoUMetric', iou_metrics=['mIoU']),
                         dict(type='BoundaryFScore', tolerances=(1, 3))]
    cfg.test_dataloader = cfg.val_dataloader
    cfg.test_evaluator = cfg.val_evaluator
    cfg.test_cfg = dict(type='TestLoop')
    cfg.default_hooks.visualization = dict(type='SegVisualizationHook')
    cfg.visualizer = dict(type='SegBoundaryVisualizer', name='visualizer',
                          vis_backends=[dict(type='LocalVisBackend')])
    cfg.pop('work_dir')
    config = _write_config(tmp_path / 'tiny.py', cfg)

    train = load_tool('train')
    work = str(tmp_path / 'work')
    train.main([config, '--work-dir', work, '--cfg-options', 'train_cfg.max_iters=2'])
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
    runner = train.main([config, '--work-dir', work, '--resume',
                         '--cfg-options', 'train_cfg.max_iters=4'])
    assert runner.iter == 4 and osp.isfile(osp.join(work, 'iter_4.pth'))

    test = load_tool('test')
    # (a fresh visualizer name: mmengine keeps one instance per name per process)
    metrics = test.main([config, osp.join(work, 'iter_4.pth'), '--work-dir', work,
                         '--show-dir', 'vis', '--cfg-options', 'visualizer.name=vis_test'])
    assert {'mIoU', 'mBF@1px', 'mBF@3px'} <= set(metrics)
    pictures = list((tmp_path / 'work').glob('**/vis/**/*.png'))
    assert pictures, 'the --show-dir pictures were not written'

    with pytest.raises(FileNotFoundError, match='does not exist'):
        train.main([str(tmp_path / 'nope.py')])
    with pytest.raises(SystemExit, match='checkpoint'):
        test.main([config, str(tmp_path / 'missing.pth')])
