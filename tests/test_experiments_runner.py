"""mmgscnn.experiments.runner: one tool process with a time limit, its
failures and peak memory; a train-and-test run that runs out of time."""
import sys
import time

import pytest

from helpers import write_camvid_layout, write_study_config
from mmgscnn.experiments import runner


def test_run_tool_time_limit_and_failure(tmp_path):
    log = str(tmp_path / 'log.txt')
    start = time.monotonic()
    with pytest.raises(runner.ToolTimedOut, match='time limit'):
        runner.run_tool([sys.executable, '-c', 'import time; time.sleep(60)'], log,
                        deadline=time.monotonic() + 1)
    assert time.monotonic() - start < 30
    with pytest.raises(runner.ToolFailed, match=r'(?s)exit 3.*went wrong'):
        runner.run_tool([sys.executable, '-c', "print('went wrong'); raise SystemExit(3)"],
                        log)
    peak = runner.run_tool([sys.executable, '-c', 'x = bytearray(200 * 2**20)'], log)
    assert peak > 200 * 2**20  # resident memory of that process, in bytes


def test_train_and_test_timeout(tmp_path):
    data_root = write_camvid_layout(str(tmp_path / 'd'))
    config = write_study_config(tmp_path / 'plain.py', data_root, False)
    result = runner.train_and_test(runner.Run(config, str(tmp_path / 'work')),
                                   log=str(tmp_path / 'log.txt'), timeout=1)
    assert result.status == runner.TIMED_OUT and 'time limit' in result.error
    assert result.metrics is None and result.seconds < 30
