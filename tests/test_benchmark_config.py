"""mmgscnn.benchmark.benchmark_config: configs prepared for a benchmark run."""
import os.path as osp

import torch
from benchmark_helpers import write_tiny_configs

from mmgscnn.benchmark.benchmark_config import (build_model, load_benchmark_config,
                                                shape_stream_stride)
from mmgscnn.benchmark.groups import REPO

GSCNN_PSP = 'configs/gscnn/gscnn-pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py'


def test_config_preparation():
    """No downloads, BN for SyncBN, batches padded to the crop, options last."""
    cfg = load_benchmark_config(osp.join(REPO, GSCNN_PSP),
                                {'model.shape_head.shape_stream.stride': 2},
                                {'model.backbone.depth': 50}, (64, 96))
    assert cfg.model.pretrained is None and cfg.model.backbone.depth == 50
    assert cfg.model.data_preprocessor.size == (64, 96)
    assert cfg.model.data_preprocessor.size_divisor is None
    assert cfg.model.test_cfg.mode == 'whole'
    assert 'SyncBN' in repr(cfg.to_dict().get('norm_cfg'))  # mmseg's top-level variable
    assert 'SyncBN' not in repr(cfg.model.to_dict())
    assert cfg.model.decode_head.norm_cfg['type'] == 'BN'
    assert shape_stream_stride(cfg) == 2
    assert shape_stream_stride(load_benchmark_config(osp.join(REPO, GSCNN_PSP), {}, None,
                                                     (64, 96))) == 1


def test_models_without_a_shape_stream_have_no_stride(tmp_path):
    configs = write_tiny_configs(tmp_path)
    for name, stride in (('baseline', None), ('dualtask', None), ('gscnn', 1)):
        cfg = load_benchmark_config(configs[name], {}, None, (32, 32))
        assert shape_stream_stride(cfg) == stride, name


def test_models_build_with_the_same_weights(tmp_path):
    cfg = load_benchmark_config(write_tiny_configs(tmp_path)['gscnn'], {}, None, (32, 32))
    a, b = (build_model(cfg, torch.device('cpu')).state_dict() for _ in range(2))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
