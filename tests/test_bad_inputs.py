"""Each bad input of the user guide's table through tools/check_data.py,
train.py (2 iterations), test.py and infer.py: every tool ends with a
one-line error naming the file or key (SystemExit, no traceback), or handles
the input (infer.py skips an unreadable image and writes the others)."""
import os
import os.path as osp
import re
import shutil

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from helpers import write_camvid_layout, write_tool_config
from mmgscnn.cli import check_data, infer, test as cli_test, train as cli_train

BAD = 'val_001.png'     # the bad file of each case (val and train: train_001.png)
IMAGE = r'/(train|val)/\w+_001\.png'        # how messages name it
LABEL = r'/(train|val)annot/\w+_001\.png'


def _files(root, name=BAD):
    """(image, label) paths of ``name`` in val and of its train twin."""
    split = name.split('_')[0]
    other = name.replace(split, 'train')
    return [(osp.join(root, split, name), osp.join(root, split + 'annot', name)),
            (osp.join(root, 'train', other), osp.join(root, 'trainannot', other))]


def truncate(path):
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:len(data) // 2])


def make_empty(path):
    open(path, 'wb').close()


def relabel(edit):
    """A change rewriting a label PNG as ``edit(label array)``."""
    return lambda path: cv2.imwrite(path, edit(cv2.imread(path, cv2.IMREAD_UNCHANGED)))


def with_values(label, values=(37, 200)):
    label = label.copy()
    label[:4, :4], label[-2:, -2:] = values
    return label


def on_files(kind, change):
    """A data change applying ``change`` to the image or label (``kind``) of
    the bad file in val and train; returns the pattern naming that file."""
    def apply(root):
        for image, label in _files(root):
            change(image if kind == 'image' else label)
        return IMAGE if kind == 'image' else LABEL
    return apply


truncated_image = on_files('image', truncate)
zero_byte_image = on_files('image', make_empty)
truncated_label = on_files('label', truncate)
rgba_label = on_files('label', relabel(lambda lab: np.dstack([lab, lab, lab,
                                                               np.full_like(lab, 255)])))
label_16bit = on_files('label', relabel(lambda lab: lab.astype(np.uint16)))
label_size_mismatch = on_files('label', relabel(lambda lab: lab[:-8]))
out_of_range_label = on_files('label', relabel(with_values))
missing_label = on_files('label', os.remove)


def empty_folder(root):
    for folder in ('val', 'valannot'):
        shutil.rmtree(osp.join(root, folder))
        os.makedirs(osp.join(root, folder))
    return r'/val\b'


def unknown_key(cfg):
    cfg.model.shape_head.shape_stream['in_channel'] = cfg.model.shape_head.shape_stream.pop(
        'in_channels')
    return r"'in_channel'.*did you mean 'in_channels'"


def wrong_in_channels(cfg):
    cfg.model.shape_head.shape_stream.in_channels = [8, 16, 32, 128]
    return r'in_channels=\[8, 16, 32, 64\]'


# (case, data or config change, what each tool does: 'error' = one-line
# SystemExit naming the file/key; 'bad' = check_data lists it and exits 1;
# 'clean' = exits 0 / runs; 'skip' = infer skips the file, writes the others;
# 'folder' = the dataset-folder check's message: the folder on its first line,
# then the layout expected and how to point the config elsewhere)
TOOLS = ('check', 'train', 'test', 'infer')
CASES = [  # case, change, outcome of check_data.py, train.py, test.py, infer.py
    ('truncated PNG image', truncated_image, 'bad error error skip'),
    ('zero-byte image', zero_byte_image, 'bad error error skip'),
    ('truncated PNG label', truncated_label, 'bad error error clean'),
    ('RGBA label', rgba_label, 'bad error error clean'),
    ('16-bit label', label_16bit, 'bad error error clean'),
    ('label size mismatch', label_size_mismatch, 'bad error error clean'),
    ('out-of-range label', out_of_range_label, 'bad error error clean'),
    ('missing label', missing_label, 'bad error error clean'),
    ('empty folder', empty_folder, 'bad folder folder error'),
    ('unknown config key', unknown_key, 'clean error error error'),
    ('wrong in_channels', wrong_in_channels, 'clean error error error'),
]


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A 2-iteration checkpoint of the tiny GSCNN of write_tool_config, shared."""
    tmp = tmp_path_factory.mktemp('trained')
    data = write_camvid_layout(str(tmp / 'data'), n_train=2, n_val=2)
    config = write_tool_config(tmp / 'tiny.py', data)
    cli_train.main([config, '--work-dir', str(tmp / 'work')])
    return str(tmp / 'work' / 'iter_2.pth')


def _run(main, argv):
    """(exit message or None, returned value); any other exception fails the test."""
    try:
        return None, main(argv)
    except SystemExit as end:
        return end.code, None


def _expect(outcome, message, needle, tool):
    if outcome == 'clean':
        assert message in (None, 0), f'{tool}: {message}'
    elif outcome == 'folder':
        assert isinstance(message, str) and 'Traceback' not in message, message
        assert re.search(needle, message.splitlines()[1]), message
    elif outcome == 'error':
        assert isinstance(message, str), f'{tool} did not stop: {message!r}'
        assert '\n' not in message and 'Traceback' not in message, message
        assert re.search(needle, message), f'{tool}: {needle!r} not in {message!r}'


@pytest.mark.parametrize('case,change,outcomes', CASES, ids=[c[0] for c in CASES])
def test_bad_input_through_every_tool(case, change, outcomes, trained, tmp_path, capsys):
    expected = dict(zip(TOOLS, outcomes.split()))
    data = write_camvid_layout(str(tmp_path / 'data'), n_train=2, n_val=2)
    cfg = Config.fromfile(write_tool_config(tmp_path / 'tiny.py', data))
    cfg.test_pipeline = cfg.test_dataloader.dataset.pipeline   # for infer.py
    needle = change(cfg) if change in (unknown_key, wrong_in_channels) else change(data)
    config = str(tmp_path / 'tiny.py')
    cfg.dump(config)
    work = str(tmp_path / 'work')
    capsys.readouterr()

    message, _ = _run(check_data.main, [config, '--workers', '2', '--no-progress'])
    out = capsys.readouterr().out
    if expected['check'] == 'bad':
        assert message == 1
        bad_lines = [line for line in out.splitlines() if re.search(needle, line)]
        assert bad_lines, out
        assert 'bad file(s)' in out.splitlines()[-1]
    else:
        assert message in (None, 0) and 'are readable' in out

    message, _ = _run(cli_train.main, [config, '--work-dir', work])
    _expect(expected['train'], message, needle, 'train.py')

    message, _ = _run(cli_test.main, [config, trained, '--work-dir', work])
    _expect(expected['test'], message, needle, 'test.py')

    out_dir = tmp_path / 'pictures'
    message, written = _run(infer.main, [config, trained, osp.join(data, 'val'),
                                         '--out-dir', str(out_dir)])
    if expected['infer'] == 'skip':
        assert isinstance(message, str) and 'skipped 1 of 2' in message
        assert osp.join(data, 'val', BAD) in message
        assert sorted(os.listdir(out_dir)) == ['val_000.png']
    elif expected['infer'] == 'clean':
        assert message is None and len(written) == 2
    else:
        assert isinstance(message, str) and '\n' not in message
        assert re.search(needle, message) or 'no images found' in message, message
