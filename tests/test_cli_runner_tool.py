"""mmgscnn.cli.runner_tool: errors of the user's data or config become one
line (also when a DataLoader worker raised them); a bad label in a worker
process stops train.py naming the file."""
import cv2
import pytest

from helpers import write_camvid_layout, write_tool_config
from mmgscnn.cli import train as cli_train
from mmgscnn.cli.runner_tool import one_line, user_errors
from mmgscnn.datasets.label_check import SegInputError
from mmgscnn.utils.config_errors import UnknownKeyError


def test_one_line_of_plain_and_worker_errors():
    assert one_line(SegInputError('label a.png is RGB')) == 'label a.png is RGB'
    assert one_line(ValueError('two\n  lines')) == 'two lines'
    # torch's DataLoader re-raises a worker's error with its traceback as message
    worker = SegInputError(
        'Caught SegInputError in DataLoader worker process 0.\nOriginal Traceback (most '
        'recent call last):\n  File "x.py", line 1, in f\n    g()\n'
        'mmgscnn.datasets.label_check.SegInputError: label b.png has values 37\n')
    assert one_line(worker) == 'label b.png has values 37'


def test_user_errors_exit_with_one_line_others_pass_through():
    for err in (SegInputError('bad\nfile'), UnknownKeyError('k'), FileNotFoundError('f')):
        with pytest.raises(SystemExit) as end, user_errors('tool.py'):
            raise err
        assert end.value.code.startswith('tool.py: ') and '\n' not in end.value.code
    with pytest.raises(RuntimeError), user_errors('tool.py'):
        raise RuntimeError('a bug keeps its traceback')


def test_bad_label_in_a_worker_process_stops_training_naming_it(tmp_path):
    data = write_camvid_layout(str(tmp_path / 'data'), n_train=2, n_val=1)
    label = f'{data}/trainannot/train_001.png'
    cv2.imwrite(label, cv2.imread(label, cv2.IMREAD_UNCHANGED) + 100)
    config = write_tool_config(tmp_path / 'tiny.py', data)
    with pytest.raises(SystemExit) as end:
        cli_train.main([config, '--work-dir', str(tmp_path / 'work'), '--cfg-options',
                        'train_dataloader.num_workers=1'])
    assert end.value.code.startswith(f'train.py: label {label} has values ')
    assert '\n' not in end.value.code and 'Traceback' not in end.value.code
