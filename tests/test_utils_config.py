"""mmgscnn.utils.config: replace_syncbn."""
from mmgscnn.utils.config import replace_syncbn


def test_replace_syncbn_copies_with_bn_everywhere():
    cfg = dict(type='M', norm_cfg=dict(type='SyncBN', requires_grad=True),
               heads=[dict(norm_cfg=dict(type='MMSyncBN')), dict(type='SyncBN')],
               sizes=(1, 2), note='SyncBN')
    out = replace_syncbn(cfg)
    assert out == dict(type='M', norm_cfg=dict(type='BN', requires_grad=True),
                       heads=[dict(norm_cfg=dict(type='BN')), dict(type='BN')],
                       sizes=(1, 2), note='SyncBN')
    assert cfg['norm_cfg']['type'] == 'SyncBN'  # the input is left as it was
