"""mmgscnn.benchmark.options: the checked options, --variant, the device."""
import pytest
import torch

from mmgscnn.benchmark.options import BenchmarkOptions, parse_variant, resolve_device


def test_defaults_are_the_cuda_run_at_cityscapes_size():
    opts = BenchmarkOptions()
    assert opts.crop == [512, 1024] and opts.infer_size == [1024, 2048]
    assert opts.precision == ['fp32', 'amp'] and (opts.batch, opts.warmup, opts.iters) == (
        2, 5, 20)
    assert opts.variants == [] and not opts.skip_flops and opts.time_limit is None


def test_variant_values_are_parsed_like_cfg_options():
    assert parse_variant(['paper', 'model.shape_head.shape_stream.first_block_low_res=False',
                          'model.shape_head.shape_stream.stem_channels=0', 'a.b=[1,2]',
                          'a.c=None', 'a.d=0.5', 'a.e=sobel']) == (
        'paper', {'model.shape_head.shape_stream.first_block_low_res': False,
                  'model.shape_head.shape_stream.stem_channels': 0, 'a.b': [1, 2],
                  'a.c': None, 'a.d': 0.5, 'a.e': 'sobel'})


def test_stride2_is_the_s2_variant_after_the_others():
    opts = BenchmarkOptions(variant=[['c4', 'model.shape_head.shape_stream.channels=[8,8,8,4]']],
                            stride2=True)
    assert opts.variants == [
        ('c4', {'model.shape_head.shape_stream.channels': [8, 8, 8, 4]}),
        ('s2', {'model.shape_head.shape_stream.stride': 2})]
    assert opts.variant == [['c4', 'model.shape_head.shape_stream.channels=[8,8,8,4]']]


@pytest.mark.parametrize('kwargs, message', [
    (dict(variant=[['model.x=1']]), 'give a LABEL, then one or more KEY=VALUE'),
    (dict(variant=[['s3']]), 'give a LABEL, then one or more KEY=VALUE'),
    (dict(variant=[['s3', 'stride', '2']]), "['stride', '2'] is not KEY=VALUE"),
    (dict(variant=[['s2', 'a=1']], stride2=True), "labels must differ, got ['s2', 's2']"),
    (dict(iters=0), '--iters must be >= 1'),
    (dict(batch=0), '--batch must be >= 1'),
    (dict(warmup=-1), '--warmup must be >= 0'),
    (dict(threads=0), '--threads must be >= 1'),
    (dict(crop=(0, 5)), '--crop needs two positive sizes'),
    (dict(infer_size=(5, )), '--infer-size needs two positive sizes'),
    (dict(precision=['fp16']), '--precision takes fp32 and/or amp'),
    (dict(time_limit=0), '--time-limit must be a positive number'),
])
def test_bad_options_name_the_option_and_the_fix(kwargs, message):
    with pytest.raises(SystemExit) as info:
        BenchmarkOptions(**kwargs)
    assert message in str(info.value) and str(info.value).startswith('benchmark.py: ')


def test_precisions_are_deduplicated_in_order():
    assert BenchmarkOptions(precision=['amp', 'fp32', 'amp']).precision == ['amp', 'fp32']


def test_plain_cuda_device_gets_an_index(monkeypatch):
    """'cuda' (the default on a CUDA machine) becomes 'cuda:<current>', which
    torch.cuda.set_device accepts."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'current_device', lambda: 3)
    assert resolve_device('cuda') == torch.device('cuda', 3)
    assert resolve_device('cuda:1') == torch.device('cuda', 1)
    assert resolve_device('cpu') == torch.device('cpu')
    assert resolve_device(None) == torch.device('cuda', 3)


def test_missing_cuda_and_bad_devices_are_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert resolve_device(None) == torch.device('cpu')
    for name, message in (('cuda:0', 'CUDA is not available'), ('gpu', 'not a torch device'),
                          ('meta', 'only cpu and cuda')):
        with pytest.raises(SystemExit, match=message):
            resolve_device(name)
