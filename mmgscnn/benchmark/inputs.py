"""Synthetic inputs, as mmseg's data pipelines give them: no dataset needed."""


def train_batch(model, batch, crop, seed=0):
    """A training batch as a data loader gives it: uint8 images (3, H, W)
    and labels (1, H, W) with blobs of classes and a band of ignore_index."""
    import torch
    import torch.nn.functional as F
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    h, w = crop
    g = torch.Generator().manual_seed(seed)
    head = model.decode_head
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g))
        coarse = torch.randint(0, head.num_classes, (1, 1, max(1, h // 16), max(1, w // 16)),
                               generator=g).float()
        label = F.interpolate(coarse, size=(h, w), mode='nearest')[0].long()
        label[:, :max(1, h // 16)] = head.ignore_index
        meta = dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w))
        samples.append(SegDataSample(gt_sem_seg=PixelData(data=label), metainfo=meta))
    return dict(inputs=inputs, data_samples=samples)


def infer_batch(size, seed=1):
    """One uint8 image (3, H, W) with its meta, as the test pipeline gives it."""
    import torch
    from mmseg.structures import SegDataSample
    h, w = size
    g = torch.Generator().manual_seed(seed)
    img = torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)
    meta = dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w))
    return dict(inputs=[img], data_samples=[SegDataSample(metainfo=meta)])
