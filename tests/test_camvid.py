"""CamVid dataset and configs, the boundary visualizer, tools/infer.py."""
import glob
import importlib.util
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.structures import PixelData
from mmseg.registry import DATASETS, METRICS, MODELS
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer

from helpers import TINY_CLASSES, draw_scene, tiny_model, tiny_runner_config
from mmgscnn.datasets import CamVidDataset
from mmgscnn.visualization import SegBoundaryVisualizer

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CAMVID_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', '*', '*_camvid-360x480.py')))
CAMVID_PALETTE = [[128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128],
                  [60, 40, 222], [128, 128, 0], [192, 128, 128], [64, 64, 128],
                  [64, 0, 128], [64, 64, 0], [0, 128, 192]]


def write_camvid(root, h=24, w=32, splits=(('train', 2), ('val', 2))):
    """Tiny CamVid layout whose labels use raw ids 0..11 (11 = unlabelled).
    Returns {path of each label: raw label array}."""
    rng = np.random.default_rng(0)
    labels = {}
    for split, n in splits:
        for i in range(n):
            img, _ = draw_scene(rng, h, w)
            label = rng.integers(0, 12, (h, w)).astype(np.uint8)
            label[:4, :] = 11
            for folder, arr in ((split, img), (split + 'annot', label)):
                path = osp.join(root, folder, f'{split}_{i:03d}.png')
                os.makedirs(osp.dirname(path), exist_ok=True)
                cv2.imwrite(path, arr)
            labels[path] = label
    return labels


LOAD = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]


# ------------------------------------------------------------------ dataset

def test_dataset_reads_the_layout_and_maps_unlabelled_to_255(tmp_path):
    labels = write_camvid(str(tmp_path))
    ds = CamVidDataset(data_root=str(tmp_path), pipeline=LOAD,
                       data_prefix=dict(img_path='val', seg_map_path='valannot'))
    assert len(ds) == 2
    assert ds.metainfo['classes'] == ('sky', 'building', 'pole', 'road', 'sidewalk',
                                      'tree', 'sign-symbol', 'fence', 'car',
                                      'pedestrian', 'bicyclist')
    assert [list(c) for c in ds.metainfo['palette']] == CAMVID_PALETTE
    for i in range(2):
        item = ds[i]
        raw = labels[item['seg_map_path']]
        gt = item['gt_seg_map']
        assert osp.basename(item['img_path']) == osp.basename(item['seg_map_path'])
        assert item['img'].shape == (24, 32, 3)
        np.testing.assert_array_equal(gt[raw == 11], 255)
        np.testing.assert_array_equal(gt[raw != 11], raw[raw != 11])
        assert gt.max() == 255 and set(np.unique(gt)) <= set(range(11)) | {255}


def test_dataset_with_a_subset_of_classes(tmp_path):
    labels = write_camvid(str(tmp_path))
    ds = CamVidDataset(data_root=str(tmp_path), pipeline=LOAD,
                       metainfo=dict(classes=('road', 'car')),
                       data_prefix=dict(img_path='val', seg_map_path='valannot'))
    assert ds.metainfo['palette'] == [[128, 64, 128], [64, 0, 128]]
    item = ds[0]
    raw, gt = labels[item['seg_map_path']], item['gt_seg_map']
    np.testing.assert_array_equal(gt == 0, raw == 3)
    np.testing.assert_array_equal(gt == 1, raw == 8)
    np.testing.assert_array_equal(gt == 255, (raw != 3) & (raw != 8))


def test_dataset_names_a_missing_folder(tmp_path):
    write_camvid(str(tmp_path), splits=(('val', 1), ))
    with pytest.raises(FileNotFoundError, match=r"train.*does not exist.*trainannot"):
        CamVidDataset(data_root=str(tmp_path),
                      data_prefix=dict(img_path='train', seg_map_path='trainannot'))
    (tmp_path / 'valannot' / 'val_000.png').unlink()
    with pytest.raises(FileNotFoundError, match='val_000.png'):
        CamVidDataset(data_root=str(tmp_path),
                      data_prefix=dict(img_path='val', seg_map_path='valannot'))


# ------------------------------------------------------------------ configs

def test_camvid_configs_load_and_build(tmp_path, monkeypatch):
    write_camvid(str(tmp_path))
    monkeypatch.setenv('CAMVID_ROOT', str(tmp_path))
    names = sorted(osp.basename(p) for p in CAMVID_CONFIGS)
    assert names == sorted(f'{g}{m}_r18-d8{p}_1xb8-20k_camvid-360x480.py'
                           for g in ('', 'gscnn-', 'dual-task-')
                           for m in ('deeplabv3plus', 'pspnet') for p in ('', '-in1k-pre')
                           if not (g == 'dual-task-' and p))
    for path in CAMVID_CONFIGS:
        cfg = Config.fromfile(path)
        name = osp.basename(path)
        assert cfg.train_dataloader.dataset.data_root == str(tmp_path)
        assert cfg.visualizer.type == 'SegBoundaryVisualizer'
        want = 'open-mmlab://resnet18_v1c' if 'in1k-pre' in name else None
        assert cfg.model.pretrained == want, name
        if 'in1k-pre' in name:
            continue  # the same model; building would not load the weights anyway
        model = MODELS.build(cfg.model)
        head = model.decode_head
        if name.startswith('gscnn-'):
            assert type(model).__name__ == 'GSCNNEncoderDecoder'
            head = head.decoder
        assert type(head).__name__ == ('DepthwiseSeparableASPPHead' if 'deeplab' in name
                                       else 'PSPHead')
        assert head.num_classes == 11 and model.auxiliary_head.num_classes == 11
        assert model.backbone.depth == 18
        assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    # The evaluators and datasets of the (shared) data config build and run.
    metrics = [METRICS.build(m) for m in cfg.val_evaluator]
    assert [type(m).__name__ for m in metrics] == ['IoUMetric', 'BoundaryFScore',
                                                   'CropIoUMetric']
    assert metrics[2].crop_boxes(360, 480)[-1] == (141, 184, 211, 269)  # crop factor 400
    val = DATASETS.build(cfg.val_dataloader.dataset)
    assert len(val) == 2 and val[0]['data_samples'].gt_sem_seg.data.max() == 255
    train = DATASETS.build(cfg.train_dataloader.dataset)
    inputs = train[0]['inputs']
    assert inputs.shape[0] == 3 and inputs.shape[1] <= 360 and inputs.shape[2] <= 480


# --------------------------------------------------------------- visualizer

def make_sample(h=24, w=32, boundary=True):
    rng = np.random.default_rng(5)
    ds = SegDataSample()
    ds.gt_sem_seg = PixelData(data=torch.from_numpy(rng.integers(0, 4, (1, h, w))))
    ds.pred_sem_seg = PixelData(data=torch.from_numpy(rng.integers(0, 4, (1, h, w))))
    if boundary:
        ds.pred_boundary = PixelData(data=torch.rand(1, h, w, generator=torch.Generator()
                                                     .manual_seed(0)))
    return ds


def draw_with(visualizer, image, sample, out_file, **kwargs):
    visualizer.dataset_meta = dict(classes=TINY_CLASSES,
                                   palette=[[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]])
    visualizer.add_datasample('x', image, sample, out_file=str(out_file), **kwargs)
    return cv2.imread(str(out_file))[..., ::-1]


def test_visualizer_adds_a_boundary_panel(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (24, 32, 3)).astype(np.uint8)
    sample = make_sample()
    plain = draw_with(SegLocalVisualizer(name='plain'), image, sample, tmp_path / 'a.png')
    ours = draw_with(SegBoundaryVisualizer(name='ours'), image, sample, tmp_path / 'b.png')
    assert plain.shape == (24, 64, 3) and ours.shape == (24, 96, 3)
    np.testing.assert_array_equal(ours[:, :64], plain)
    grey = np.round(sample.pred_boundary.data[0].numpy() * 255).astype(np.uint8)
    for c in range(3):
        np.testing.assert_array_equal(ours[:, 64:, c], grey)
    coloured = draw_with(SegBoundaryVisualizer(name='jet', boundary_cmap='jet'), image,
                         sample, tmp_path / 'c.png')
    assert coloured.shape == (24, 96, 3)
    assert not np.array_equal(coloured[:, 64:, 0], coloured[:, 64:, 2])
    # prediction only: prediction | boundary, and get_image() has both
    vis = SegBoundaryVisualizer(name='pred_only')
    only = draw_with(vis, image, sample, tmp_path / 'd.png', draw_gt=False)
    assert only.shape == (24, 64, 3) and vis.get_image().shape == (24, 64, 3)
    with pytest.raises(ValueError, match='boundary_cmap'):
        SegBoundaryVisualizer(name='bad', boundary_cmap='no-such-map')


def test_visualizer_without_boundary_is_segLocalVisualizer(tmp_path):
    image = np.random.default_rng(1).integers(0, 255, (24, 32, 3)).astype(np.uint8)
    sample = make_sample(boundary=False)
    plain = draw_with(SegLocalVisualizer(name='plain2'), image, sample, tmp_path / 'a.png')
    ours = draw_with(SegBoundaryVisualizer(name='ours2'), image, sample, tmp_path / 'b.png')
    np.testing.assert_array_equal(ours, plain)


def test_validation_with_camvid_metrics_and_pictures(tmp_path):
    """A tiny GSCNN validated by the Runner on CamVid data with the config's
    three metrics and the visualization hook drawing the boundary panel."""
    write_camvid(str(tmp_path / 'data'), h=24, w=32)
    cfg = tiny_runner_config(tmp_path / 'work', str(tmp_path / 'data'),
                             model=tiny_model(num_classes=11))
    cfg.val_dataloader.dataset = dict(
        type='CamVidDataset', data_root=str(tmp_path / 'data'),
        data_prefix=dict(img_path='val', seg_map_path='valannot'),
        pipeline=cfg.val_dataloader.dataset.pipeline)
    data_cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets', 'camvid.py'))
    cfg.val_evaluator = data_cfg.val_evaluator
    cfg.visualizer = data_cfg.visualizer
    cfg.default_hooks.visualization = dict(type='SegVisualizationHook', draw=True,
                                           interval=1)
    metrics = Runner.from_cfg(cfg).val()
    for key in ('mIoU', 'mBF@1px', 'mBF@5px', 'mIoU@crop0', 'mIoU@crop400'):
        assert key in metrics, key
    pictures = glob.glob(str(tmp_path / 'work' / '**' / 'val_val_*.png'), recursive=True)
    assert len(pictures) == 2
    assert cv2.imread(pictures[0]).shape == (24, 3 * 32, 3)


# ---------------------------------------------------------------- infer.py

def load_infer():
    spec = importlib.util.spec_from_file_location(
        'mmgscnn_infer_tool', osp.join(REPO, 'tools', 'infer.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_model(tmp_path, gscnn=True):
    model_cfg = tiny_model(gscnn=gscnn)
    cfg = Config(dict(
        default_scope='mmseg',
        model=model_cfg,
        test_pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                       dict(type='PackSegInputs')]))
    cfg_path = str(tmp_path / f'tiny_{gscnn}.py')
    cfg.dump(cfg_path)
    model = MODELS.build(model_cfg)
    ckpt = str(tmp_path / f'tiny_{gscnn}.pth')
    torch.save({'state_dict': model.state_dict(),
                'meta': {'dataset_meta': {'classes': TINY_CLASSES,
                                          'palette': [[0, 0, 0], [255, 0, 0],
                                                      [0, 255, 0], [0, 0, 255]]}}}, ckpt)
    return cfg_path, ckpt


def write_images(folder, n=2, h=24, w=32):
    rng = np.random.default_rng(3)
    folder.mkdir()
    for i in range(n):
        cv2.imwrite(str(folder / f'img{i}.png'), draw_scene(rng, h, w)[0])
    return folder


def test_infer_finds_files_folders_and_globs(tmp_path):
    infer = load_infer()
    images = write_images(tmp_path / 'images', n=3)
    (images / 'notes.txt').write_text('not an image')
    names = [str(images / f'img{i}.png') for i in range(3)]
    assert infer.find_images(names[1]) == [names[1]]
    assert infer.find_images(str(images)) == names
    assert infer.find_images(str(images / 'img[02].png')) == [names[0], names[2]]
    with pytest.raises(SystemExit, match='no images found'):
        infer.find_images(str(images / '*.jpg'))


def test_infer_writes_image_segmentation_boundary(tmp_path):
    infer = load_infer()
    cfg_path, ckpt = write_model(tmp_path)
    images = write_images(tmp_path / 'images')
    out = tmp_path / 'out'
    written = infer.main([cfg_path, ckpt, str(images / 'img0.png'), '--out-dir', str(out),
                          '--device', 'cpu'])
    assert written == [str(out / 'img0.png')]
    picture = cv2.imread(written[0])
    assert picture.shape == (24, 3 * 32, 3)
    # first panel: the image itself; last: a grey boundary map
    np.testing.assert_array_equal(picture[:, :32], cv2.imread(str(images / 'img0.png')))
    panel = picture[:, 64:].astype(int)
    assert (panel[..., 0] == panel[..., 1]).all() and (panel[..., 1] == panel[..., 2]).all()
    # a folder gives every image
    written = infer.main([cfg_path, ckpt, str(images), '--out-dir', str(out / 'all')])
    assert written == [str(out / 'all' / 'img0.png'), str(out / 'all' / 'img1.png')]
    assert all(osp.isfile(p) for p in written)


def test_infer_baseline_and_errors(tmp_path):
    infer = load_infer()
    cfg_path, ckpt = write_model(tmp_path, gscnn=False)
    images = write_images(tmp_path / 'images', n=1)
    out = tmp_path / 'out'
    written = infer.main([cfg_path, ckpt, str(images), '--out-dir', str(out)])
    assert cv2.imread(written[0]).shape == (24, 2 * 32, 3)  # no boundary panel
    with pytest.raises(SystemExit, match='config file .*nope.py'):
        infer.main([str(tmp_path / 'nope.py'), ckpt, str(images), '--out-dir', str(out)])
    with pytest.raises(SystemExit, match='checkpoint file .*nope.pth'):
        infer.main([cfg_path, str(tmp_path / 'nope.pth'), str(images), '--out-dir',
                    str(out)])
    with pytest.raises(SystemExit, match='no images found'):
        infer.main([cfg_path, ckpt, str(images / '*.jpg'), '--out-dir', str(out)])
    with pytest.raises(SystemExit, match='opacity'):
        infer.main([cfg_path, ckpt, str(images), '--out-dir', str(out), '--opacity', '2'])
    # a checkpoint of the GSCNN model does not fit the baseline config
    _, gscnn_ckpt = write_model(tmp_path, gscnn=True)
    with pytest.raises(SystemExit, match='does not fit'):
        infer.main([cfg_path, gscnn_ckpt, str(images), '--out-dir', str(out)])
