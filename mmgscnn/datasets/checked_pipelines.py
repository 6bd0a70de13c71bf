"""Swap mmseg's loading transforms in a config's data pipelines for the
checked ones of :mod:`mmgscnn.datasets.transforms.checked_loading`, so that
a bad image or label stops training or testing with a one-line error naming
the file (on the data workers, no host-device synchronisation)."""
from typing import Optional

#: mmseg/mmcv transform -> the checked one that loads the same way.
CHECKED = {'LoadImageFromFile': 'CheckedLoadImageFromFile',
           'LoadAnnotations': 'CheckedLoadAnnotations'}
DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def model_label_space(model_cfg) -> tuple:
    """(num_classes, ignore_index) of the decode head of a segmentor config
    (the wrapped decoder of a ``GatedShapeHead``; the last head of a list);
    (None, 255) when the config does not say."""
    head = (model_cfg or {}).get('decode_head') or {}
    if isinstance(head, (list, tuple)):
        head = head[-1] if head else {}
    if head.get('type') == 'GatedShapeHead':
        head = head.get('decoder') or {}
    if (model_cfg or {}).get('type') in ('SegTTAModel', 'GSCNNTTAModel'):
        return model_label_space(model_cfg.get('module'))
    return head.get('num_classes'), head.get('ignore_index', 255)


def _short(kind) -> Optional[str]:
    return kind.rsplit('.', 1)[-1] if isinstance(kind, str) else None


def _swap(transforms, num_classes, ignore_index) -> int:
    """Swap in place in a list of transform configs (recursing into
    ``transforms`` of wrappers such as TestTimeAug); returns how many."""
    swapped = 0
    for t in transforms:
        if isinstance(t, (list, tuple)):
            swapped += _swap(t, num_classes, ignore_index)
            continue
        if not isinstance(t, dict):
            continue
        short = _short(t.get('type'))
        if short in CHECKED:
            t['type'] = CHECKED[short]
            swapped += 1
        if _short(t.get('type')) == 'CheckedLoadAnnotations':
            if t.get('num_classes') is None and num_classes is not None:
                t['num_classes'] = num_classes
            t.setdefault('ignore_index', ignore_index)
        if isinstance(t.get('transforms'), (list, tuple)):
            swapped += _swap(t['transforms'], num_classes, ignore_index)
    return swapped


def _datasets(dataset):
    if not isinstance(dataset, dict):
        return
    if dataset.get('datasets') is not None:
        for inner in dataset['datasets']:
            yield from _datasets(inner)
    elif dataset.get('dataset') is not None:
        yield from _datasets(dataset['dataset'])
    yield dataset


def use_checked_loading(cfg) -> int:
    """Give every dataloader pipeline of ``cfg`` (a Config, changed in place)
    the checked loading transforms, with the model's ``num_classes`` and
    ``ignore_index`` for the label check. Returns how many were swapped."""
    num_classes, ignore_index = model_label_space(cfg.get('model'))
    swapped = 0
    for key in DATALOADERS:
        loader = cfg.get(key)
        if not loader:
            continue
        for dataset in _datasets(loader.get('dataset')):
            if isinstance(dataset.get('pipeline'), (list, tuple)):
                swapped += _swap(dataset['pipeline'], num_classes, ignore_index)
    return swapped


__all__ = ['CHECKED', 'model_label_space', 'use_checked_loading']
