"""A model's config prepared for a benchmark run, and the model built from it."""


def load_benchmark_config(path, column_options, cfg_options, crop):
    """The config of one model, ready to build without downloads: no
    pretrained weights, BN for SyncBN, whole-image inference, batches padded
    to ``crop`` (H, W); then the column's and the user's ``--cfg-options``."""
    from mmgscnn.utils.config import load_config, replace_syncbn
    cfg = load_config(path)
    cfg.merge_from_dict({'model.pretrained': None,
                         'model.data_preprocessor.size': tuple(crop),
                         'model.data_preprocessor.size_divisor': None,
                         'model.test_cfg.mode': 'whole'})
    if column_options:
        cfg.merge_from_dict(column_options)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.model = replace_syncbn(cfg.model.to_dict())
    return cfg


def shape_stream_stride(cfg):
    """Stride of the config's shape stream, or None for a model without one."""
    head = cfg.model.get('shape_head')
    if head is None:
        head = cfg.model.get('decode_head', {})
        if not isinstance(head, dict) or head.get('type') != 'GatedShapeHead':
            return None
    return int((head.get('shape_stream') or {}).get('stride', 1))


def build_model(cfg, device):
    """The config's model on ``device``, weights from a fixed seed."""
    import torch
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    torch.manual_seed(0)
    return MODELS.build(cfg.model).to(device)
