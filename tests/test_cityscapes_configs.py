"""The shipped Cityscapes GSCNN configs (configs/gscnn/*_cityscapes-512x1024.py):
mmseg's baseline model plus the shape stream, nothing else, and under 1 %
more parameters."""
import copy

import pytest
from mmengine.config import Config

from mmseg.registry import MODELS


def _params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize('name,baseline', [
    ('gscnn-deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024',
     'deeplabv3plus/deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024.py'),
    ('gscnn-pspnet_r101-d8_4xb2-80k_cityscapes-512x1024',
     'pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py'),
])
def test_shipped_config_parameter_overhead(name, baseline, tmp_path):
    import os.path as osp
    repo = osp.dirname(osp.dirname(osp.abspath(__file__)))
    plain_file = tmp_path / 'baseline.py'
    plain_file.write_text(f"_base_ = ['mmseg::{baseline}']\n")
    models, model_cfgs = [], []
    for path in (osp.join(repo, 'configs', 'gscnn', name + '.py'), str(plain_file)):
        cfg = Config.fromfile(path)
        model_cfgs.append(cfg.model.to_dict())
        cfg.model.pretrained = None
        cfg.model.backbone.norm_cfg = dict(type='BN', requires_grad=True)
        model_cfg = copy.deepcopy(cfg.model)
        text = str(model_cfg).replace("'SyncBN'", "'BN'")
        models.append(MODELS.build(Config(dict(m=eval(text))).m))
    # The GSCNN config is the baseline's model plus the shape stream, nothing else.
    gscnn_cfg, plain_cfg = model_cfgs
    assert gscnn_cfg.pop('type') == 'GSCNNEncoderDecoder' and 'shape_head' in gscnn_cfg
    gscnn_cfg.pop('shape_head')
    plain_cfg.pop('type')
    assert gscnn_cfg == plain_cfg
    gscnn, plain = models
    overhead = _params(gscnn) / _params(plain) - 1
    print(f'{name}: {_params(plain)} -> {_params(gscnn)} parameters, '
          f'+{100 * overhead:.2f}%')
    assert 0 < overhead < 0.01
    assert type(gscnn.decode_head.decoder) is type(plain.decode_head)
