"""mmgscnn.utils.known_warnings: reading an mmseg:: config prints no
pkg_resources deprecation warning once mmgscnn is imported, other warnings
still show; our metrics build without mmengine's missing-prefix warning."""
import os.path as osp
import subprocess
import sys

from mmengine.logging import MMLogger

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(REPO, 'configs', 'gscnn',
                  'gscnn-deeplabv3plus_r18-d8_1xb16-2k_camvid-180x240.py')


def test_config_reading_prints_no_pkg_resources_warning_but_others():
    code = ('import warnings, mmgscnn\n'
            'from mmengine.config import Config\n'
            f'Config.fromfile({CONFIG!r})\n'
            "warnings.warn('another warning', UserWarning)\n")
    proc = subprocess.run([sys.executable, '-W', 'default', '-c', code], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'pkg_resources' not in proc.stderr
    assert 'another warning' in proc.stderr


def test_our_metrics_build_without_the_missing_prefix_warning(capsys):
    from mmgscnn.evaluation.metrics import BoundaryFScore, BoundaryIoUMetric, CropIoUMetric
    from mmseg.evaluation import IoUMetric
    MMLogger.get_instance('prefix_check', log_level='WARNING')
    BoundaryFScore()
    CropIoUMetric()
    BoundaryIoUMetric()
    assert 'prefix is not set' not in capsys.readouterr().out
    IoUMetric()  # mmseg's own metric does warn: the check can see it
    assert 'prefix is not set in metric class IoUMetric' in capsys.readouterr().out
    assert CropIoUMetric(prefix='whole').prefix == 'whole'
    assert BoundaryIoUMetric(prefix='whole').prefix == 'whole'
