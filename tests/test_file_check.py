"""mmgscnn.datasets.file_check and mmgscnn.cli.check_data (tools/check_data.py):
every pair of a config's datasets, read with the dataset's own label map, in
worker processes; the summary and exit status."""
import os
import os.path as osp

import cv2
import pytest
from mmengine.config import Config

from helpers import write_camvid
from mmgscnn.cli import check_data
from mmgscnn.datasets.file_check import check_files, split_datasets, summary


def camvid_config(root, path):
    def loader(split):
        return dict(dataset=dict(type='CamVidDataset', data_root=root, pipeline=[],
                                 data_prefix=dict(img_path=split,
                                                  seg_map_path=split + 'annot')))
    cfg = Config(dict(train_dataloader=loader('train'), val_dataloader=loader('val'),
                      test_dataloader=loader('val')))
    cfg.dump(str(path))
    return cfg


def test_camvid_labels_are_read_with_the_dataset_label_map(tmp_path):
    root = str(tmp_path / 'camvid')
    labels = write_camvid(root)          # raw ids 0..11, 11 = unlabelled -> 255
    cfg = camvid_config(root, tmp_path / 'c.py')
    # test = val: checked once
    assert [key for _, key, _ in split_datasets(cfg)] == ['train_dataloader.dataset',
                                                          'val_dataloader.dataset']
    report = check_files(cfg, workers=0, progress=False)
    assert report['problems'] == [] and report['pairs'] == 4
    assert [(s, n, k) for s, _, n, k in report['datasets']] == [('train', 2, 11),
                                                                ('val', 2, 11)]
    # 12 is no CamVid class; a missing label is named although CamVidDataset
    # itself refuses to list its images
    path = sorted(labels)[1]
    label = labels[path].copy()
    label[-1, -3:] = 12
    cv2.imwrite(path, label)
    missing = osp.join(root, 'valannot', 'val_001.png')
    os.remove(missing)
    report = check_files(cfg, workers=2, progress=False)
    assert [(p, kind) for p, kind, _ in report['problems']] == [
        (path, 'values'), (osp.join(root, 'val', 'val_001.png'), 'missing')]
    assert 'has values 12 (3 px) outside the 11 classes (0..10)' in report['problems'][0][2]
    assert missing in report['problems'][1][2]
    assert summary(report)[-1] == ('2 bad file(s) in 4 image/label pair(s) of 2 '
                                   'dataset(s): 1 missing, 1 values')


def test_tool_exit_status_progress_and_splits(tmp_path, capsys):
    root = str(tmp_path / 'camvid')
    labels = write_camvid(root)
    camvid_config(root, tmp_path / 'c.py')
    config = str(tmp_path / 'c.py')
    assert check_data.main([config, '--workers', '2']) == 0     # progress bar, 2 workers
    out = capsys.readouterr().out
    assert '2/2' in out and out.strip().endswith('are readable, of equal size and in range')
    bad = sorted(labels)[0]                                    # a train label
    cv2.imwrite(bad, labels[bad] * 0 + 40)
    with pytest.raises(SystemExit) as end:
        check_data.main([config, '--workers', '0', '--no-progress'])
    assert end.value.code == 1 and f'{bad}: has values 40' in capsys.readouterr().out
    assert check_data.main([config, '--splits', 'val', '--no-progress']) == 0
    assert check_data.main([config, '--num-classes', '41', '--no-progress']) == 0
    with pytest.raises(SystemExit, match='has no dataset for the splits train'):
        check_data.main([config, '--splits', 'train', '--cfg-options',
                         'train_dataloader=None', '--no-progress'])
