"""The dataset-folder check that tools/train.py and tools/test.py run before
building a Runner: one message naming the missing folder, the layout, how to
make the data and how to point the config elsewhere."""
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

from helpers import tiny_runner_config, write_camvid_layout
from mmgscnn.cli import test as cli_test
from mmgscnn.cli import train as cli_train
from mmgscnn.datasets.data_check import (DatasetNotFoundError, check_dataset_folders,
                                         dataloaders_used_by)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def cityscapes_cfg(root):
    """Loaders as in mmseg's Cityscapes base config (train + val + test)."""
    def loader(split):
        return dict(batch_size=1, dataset=dict(
            type='CityscapesDataset', data_root=root, pipeline=[],
            data_prefix=dict(img_path=f'leftImg8bit/{split}', seg_map_path=f'gtFine/{split}')))
    return Config(dict(train_dataloader=loader('train'), val_dataloader=loader('val'),
                       test_dataloader=loader('val'), val_cfg=dict(type='ValLoop')))


def touch(path):
    os.makedirs(osp.dirname(path), exist_ok=True)
    open(path, 'wb').close()


def write_cityscapes(root, label_suffix):
    for split in ('train', 'val'):
        touch(osp.join(root, 'leftImg8bit', split, 'aachen', 'aachen_000000_000019_leftImg8bit.png'))
        touch(osp.join(root, 'gtFine', split, 'aachen', 'aachen_000000_000019' + label_suffix))


def test_missing_cityscapes_root_names_folder_layout_converter_and_override(tmp_path):
    root = str(tmp_path / 'cityscapes')
    with pytest.raises(DatasetNotFoundError) as err:
        check_dataset_folders(cityscapes_cfg(root), 'train')
    msg = str(err.value)
    assert f'{root} does not exist' in msg
    assert '[train_dataloader.dataset.data_root, val_dataloader.dataset.data_root]' in msg
    assert 'leftImg8bit/{train,val}/<city>/<name>_leftImg8bit.png' in msg
    assert 'gtFine/{train,val}/<city>/<name>_gtFine_labelTrainIds.png' in msg
    assert f'python tools/dataset_converters/cityscapes.py {root} --nproc 8' in msg
    assert ('--cfg-options train_dataloader.dataset.data_root=DIR '
            'val_dataloader.dataset.data_root=DIR') in msg
    assert isinstance(err.value, FileNotFoundError)


def test_unconverted_cityscapes_labels_are_reported_and_converted_ones_pass(tmp_path):
    root = str(tmp_path / 'cityscapes')
    write_cityscapes(root, '_gtFine_labelIds.png')  # the download, not converted
    with pytest.raises(DatasetNotFoundError) as err:
        check_dataset_folders(cityscapes_cfg(root), 'train')
    msg = str(err.value)
    for split in ('train', 'val'):
        assert (f'{root}/gtFine/{split} holds no *_gtFine_labelTrainIds.png file' in msg)
    assert 'leftImg8bit' not in msg.split('\n')[1]  # the image folders are fine
    assert 'cityscapes.py' in msg

    write_cityscapes(root, '_gtFine_labelTrainIds.png')
    check_dataset_folders(cityscapes_cfg(root), 'train')
    check_dataset_folders(cityscapes_cfg(root), 'test')


def test_only_the_loaders_of_the_stage_are_checked(tmp_path):
    root = str(tmp_path / 'cityscapes')
    write_cityscapes(root, '_gtFine_labelTrainIds.png')
    cfg = cityscapes_cfg(root)
    cfg.train_dataloader.dataset.data_prefix.img_path = 'leftImg8bit/nowhere'
    check_dataset_folders(cfg, 'test')  # the test loader reads val only
    with pytest.raises(DatasetNotFoundError, match='leftImg8bit/nowhere does not exist'):
        check_dataset_folders(cfg, 'train')

    cfg = cityscapes_cfg(root)
    cfg.val_dataloader.dataset.data_root = str(tmp_path / 'gone')
    with pytest.raises(DatasetNotFoundError, match='gone does not exist'):
        check_dataset_folders(cfg, 'train')
    cfg.val_cfg = None  # no validation: the val loader is not used
    check_dataset_folders(cfg, 'train')
    assert dataloaders_used_by(cfg, 'train') == ['train_dataloader']
    with pytest.raises(ValueError, match='stage'):
        dataloaders_used_by(cfg, 'val')


def test_wrapped_datasets_are_checked_with_their_config_keys(tmp_path):
    good = write_camvid_layout(str(tmp_path / 'good'), n_train=1, n_val=1)
    leaf = dict(type='CamVidDataset', data_prefix=dict(img_path='train',
                                                       seg_map_path='trainannot'))
    cfg = Config(dict(train_dataloader=dict(dataset=dict(
        type='RepeatDataset', times=2, dataset=dict(
            type='ConcatDataset', datasets=[dict(leaf, data_root=good),
                                            dict(leaf, data_root=str(tmp_path / 'bad'))])))))
    with pytest.raises(DatasetNotFoundError) as err:
        check_dataset_folders(cfg, 'train')
    msg = str(err.value)
    assert 'train_dataloader.dataset.dataset.datasets.1.data_root]' in msg
    assert 'datasets.0.data_root]' not in msg
    assert 'CamVidDataset expects <data_root>/train/ and trainannot/' in msg
    # pointing elsewhere covers every dataset of the loader
    assert ('--cfg-options train_dataloader.dataset.dataset.datasets.0.data_root=DIR '
            'train_dataloader.dataset.dataset.datasets.1.data_root=DIR') in msg


def test_missing_label_folder_and_empty_image_folder(tmp_path):
    root = write_camvid_layout(str(tmp_path / 'data'), n_train=1, n_val=1)
    cfg = Config(dict(train_dataloader=dict(dataset=dict(
        type='BaseSegDataset', data_root=root, img_suffix='.jpg',
        data_prefix=dict(img_path='train', seg_map_path='labels')))))
    with pytest.raises(DatasetNotFoundError) as err:
        check_dataset_folders(cfg, 'train')
    msg = str(err.value)
    assert f'{root}/train holds no *.jpg file' in msg  # the images are .png
    assert f'{root}/labels does not exist' in msg
    assert '2_dataset_prepare' in msg  # mmseg's guide for its own datasets
    # default suffix of the class (.jpg for BaseSegDataset) when the config has none
    cfg.train_dataloader.dataset.pop('img_suffix')
    with pytest.raises(DatasetNotFoundError, match=r'train holds no \*\.jpg'):
        check_dataset_folders(cfg, 'train')


def test_remote_data_is_not_checked():
    cfg = Config(dict(train_dataloader=dict(dataset=dict(
        type='CityscapesDataset', data_root='s3://bucket/cityscapes',
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train')))))
    check_dataset_folders(cfg, 'train')
    cfg.train_dataloader.dataset.data_root = '/nowhere/cityscapes'
    cfg.train_dataloader.dataset.backend_args = dict(backend='petrel')
    check_dataset_folders(cfg, 'train')


def write_env_config(tmp_path):
    """A config file whose data root comes from $MMGSCNN_TEST_ROOT, like the CamVid configs."""
    cfg = tiny_runner_config(tmp_path / 'work', 'ROOT', max_iters=1)
    cfg.update(test_dataloader=cfg.val_dataloader, test_cfg=dict(type='TestLoop'),
               test_evaluator=cfg.val_evaluator)
    text = Config(cfg.to_dict()).pretty_text.replace(
        "'ROOT'", "'{{$MMGSCNN_TEST_ROOT:%s}}'" % (tmp_path / 'default'))
    path = tmp_path / 'env_cfg.py'
    path.write_text(text)
    return str(path)


def test_env_variable_of_the_data_root_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv('MMGSCNN_TEST_ROOT', raising=False)
    config = write_env_config(tmp_path)
    with pytest.raises(DatasetNotFoundError) as err:
        check_dataset_folders(Config.fromfile(config), 'train')
    msg = str(err.value)
    assert f'The data of {config} is missing' in msg
    assert f'{tmp_path}/default does not exist' in msg
    assert (f'or set MMGSCNN_TEST_ROOT=DIR (this config reads its data root from '
            f'$MMGSCNN_TEST_ROOT, default {tmp_path}/default)') in msg

    monkeypatch.setenv('MMGSCNN_TEST_ROOT', write_camvid_layout(str(tmp_path / 'data')))
    check_dataset_folders(Config.fromfile(config), 'train')


def test_tools_stop_with_the_message_before_building_a_runner(tmp_path, monkeypatch):
    monkeypatch.delenv('MMGSCNN_TEST_ROOT', raising=False)
    config = write_env_config(tmp_path)
    work = tmp_path / 'work_tool'
    with pytest.raises(SystemExit) as err:
        cli_train.main([config, '--work-dir', str(work)])
    assert 'MMGSCNN_TEST_ROOT=DIR' in str(err.value.code)
    assert not work.exists()  # stopped before the Runner made its work dir

    ckpt = tmp_path / 'ckpt.pth'
    ckpt.write_bytes(b'')
    with pytest.raises(SystemExit) as err:
        cli_test.main([config, str(ckpt), '--work-dir', str(work)])
    assert '[test_dataloader.dataset.data_root]' in str(err.value.code)
    assert not work.exists()

    # From the command line: the message and exit status 1, no traceback.
    env = dict(os.environ, PYTHONPATH=REPO, PYTHONWARNINGS='ignore')
    env.pop('MMGSCNN_TEST_ROOT', None)
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'train.py'), config,
                           '--work-dir', str(work)], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert 'Traceback' not in proc.stderr
    assert f'{tmp_path}/default does not exist' in proc.stderr
