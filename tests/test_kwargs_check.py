"""mmgscnn.utils.kwargs_check: an unknown key in shape_head, shape_stream,
fusion or a loss names the key, its section and the closest valid key."""
import pytest
from mmseg.registry import MODELS

from helpers import tiny_model
from mmgscnn.utils.config_errors import ConfigError, UnknownKeyError
from mmgscnn.utils.kwargs_check import accepted_keys, check_keys


class Takes:
    def __init__(self, in_channels, loss_weight=1.0, *, init_cfg=None):
        pass


class TakesAnything:
    def __init__(self, a=1, **kwargs):
        pass


def test_check_keys_names_key_section_and_closest_key():
    check_keys(dict(type='X', in_channels=3, loss_weight=2), Takes, 'sec')   # all valid
    with pytest.raises(UnknownKeyError) as err:
        check_keys(dict(in_channel=3), Takes, 'shape_head.shape_stream')
    assert str(err.value) == ("shape_head.shape_stream: unknown key 'in_channel' (Takes "
                              "does not take it); did you mean 'in_channels'? valid keys: "
                              'in_channels, loss_weight')
    with pytest.raises(UnknownKeyError, match=r"'zzz' .*valid keys") as err:
        check_keys(dict(zzz=1), Takes, 'sec')
    assert 'did you mean' not in str(err.value)
    # a TypeError too (what Python raised before), and a ConfigError for the tools
    assert isinstance(err.value, TypeError) and isinstance(err.value, ConfigError)
    check_keys(dict(anything=1), TakesAnything, 'sec')    # **kwargs: not checked
    check_keys(dict(anything=1), 'NotRegistered', 'sec', MODELS)
    check_keys(dict(decoder=1), Takes, 'sec', also=('decoder', ))
    assert accepted_keys(Takes) == {'in_channels', 'loss_weight', 'init_cfg'}
    assert accepted_keys(TakesAnything) is None


@pytest.mark.parametrize('kwargs,message', [
    (dict(shape_stream=dict(in_channel=[8, 16, 32, 64])),
     r"shape_head\.shape_stream: unknown key 'in_channel' .*did you mean 'in_channels'"),
    (dict(head_kwargs=dict(loss_boundry=None)),
     r"model\.shape_head: unknown key 'loss_boundry' .*did you mean 'loss_boundary'"),
    (dict(head_kwargs=dict(fusion=dict(chanels=8))),
     r"shape_head\.fusion: unknown key 'chanels' .*did you mean 'channels'"),
    (dict(head_kwargs=dict(loss_dual_task=dict(type='DualTaskLoss', loss_wieght=1.0))),
     r"shape_head\.loss_dual_task: unknown key 'loss_wieght' .*did you mean 'loss_weight'"),
    (dict(head_kwargs=dict(loss_attention=dict(type='BoundaryAttentionLoss',
                                               treshold=0.5))),
     r"shape_head\.loss_attention: unknown key 'treshold' .*did you mean 'threshold'"),
    (dict(shape_stream=dict(image_gradient=dict(method='canny', sigmma=1.0))),
     r"shape_stream\.image_gradient: unknown key 'sigmma' .*did you mean 'sigma'"),
    (dict(head_kwargs=dict(boundary_target=dict(radious=2))),
     r"shape_head\.boundary_target: unknown key 'radious' .*did you mean 'radius'"),
    (dict(shape_probe_sise=32),
     r"model: unknown key 'shape_probe_sise' .*did you mean 'shape_probe_size'"),
], ids=['shape_stream', 'shape_head', 'fusion', 'loss_dual_task', 'loss_attention',
        'image_gradient', 'boundary_target', 'model'])
def test_typos_in_a_gscnn_model_config(kwargs, message):
    model_keys = {k: kwargs.pop(k) for k in list(kwargs) if k.startswith('shape_probe')}
    cfg = tiny_model('fcn', **kwargs)
    cfg.update(model_keys)
    with pytest.raises(UnknownKeyError, match=message):
        MODELS.build(cfg)
