"""mmgscnn/__init__.py: importing the package registers its modules into
mmseg's registries, also through a config's custom_imports."""
import subprocess
import sys
import textwrap


def test_import_registers_modules():
    import mmgscnn
    from mmseg.registry import MODELS
    from mmgscnn.models import (BoundaryAttentionLoss, BoundaryBCELoss, DualTaskLoss,
                                GatedShapeHead, GatedSpatialConv, GSCNNEncoderDecoder,
                                ShapeStream)
    for cls in (GatedShapeHead, GSCNNEncoderDecoder, ShapeStream, GatedSpatialConv,
                BoundaryBCELoss, BoundaryAttentionLoss, DualTaskLoss):
        assert MODELS.get(cls.__name__) is cls, cls.__name__
    assert mmgscnn.__version__


def test_config_with_custom_imports_and_mmseg_base_builds(tmp_path):
    """A fresh interpreter that never imports mmgscnn itself: the config's
    custom_imports must register the plug-in, and mmseg:: must resolve."""
    # A plain R18 DeepLabV3+ derived from mmseg's config (the user's config) ...
    (tmp_path / 'plain_r18.py').write_text(textwrap.dedent('''
        _base_ = ['mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py']
        norm_cfg = dict(type='BN', requires_grad=True)
        model = dict(
            pretrained=None,
            backbone=dict(depth=18, norm_cfg=norm_cfg),
            decode_head=dict(in_channels=512, c1_in_channels=64, channels=32,
                             norm_cfg=norm_cfg),
            auxiliary_head=dict(in_channels=256, norm_cfg=norm_cfg))
    '''))
    # ... and its GSCNN version: the lines the README tells users to add.
    cfg_file = tmp_path / 'gscnn_r18.py'
    cfg_file.write_text(textwrap.dedent('''
        _base_ = ['./plain_r18.py']
        custom_imports = dict(imports=['mmgscnn'], allow_failed_imports=False)
        model = dict(type='GSCNNEncoderDecoder',
                     shape_head=dict(shape_stream=dict(in_channels=[64, 128, 256, 512])))
    '''))
    script = textwrap.dedent(f'''
        import sys
        from mmengine.config import Config
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
        assert 'mmgscnn' not in sys.modules
        cfg = Config.fromfile({str(cfg_file)!r})
        assert 'mmgscnn' in sys.modules
        register_all_modules()
        model = MODELS.build(cfg.model)
        print(type(model).__name__, type(model.decode_head).__name__,
              type(model.decode_head.decoder).__name__)
    ''')
    out = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                         cwd=str(tmp_path), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[-3:] == ['GSCNNEncoderDecoder', 'GatedShapeHead',
                                       'DepthwiseSeparableASPPHead']
