"""CPU training measurements, each in a fresh process (peak RSS is per
process): :class:`CPUTrainWorkers` sends specs to a fork server
(``python -m mmgscnn.benchmark.cpu_workers``) that has only imported the
libraries and forks one child per measurement. Linux only (fork, /proc)."""
import gc
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile

from .benchmark_config import build_model, load_benchmark_config
from .groups import REPO
from .inputs import train_batch
from .measurement import measure_training
from .options import BenchmarkError
from .precision import amp_context, build_optim_wrapper

SERVER_MODULE = 'mmgscnn.benchmark.cpu_workers'


def _proc_status_bytes(key):
    """VmRSS / VmHWM of this process in bytes (Linux /proc)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f'{key} not in /proc/self/status')


def _reset_peak_rss():
    """Set VmHWM (peak RSS) to the current RSS (Linux >= 4.0)."""
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')


def train_worker(spec):
    """One CPU training measurement, in a freshly forked process. Memory =
    peak RSS during model build and training minus the RSS before the build
    (libraries imported and their conv/BN kernels loaded, so library code is
    not counted), in bytes -> result dict."""
    import torch
    if spec['threads']:
        torch.set_num_threads(spec['threads'])
    device = torch.device('cpu')
    cfg = load_benchmark_config(spec['path'], spec['options'], spec['cfg_options'],
                                spec['crop'])
    warm = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))
    with amp_context(spec['precision'], device):
        warm(torch.randn(2, 3, 16, 16)).sum().backward()
    del warm
    gc.collect()
    _reset_peak_rss()
    rss0 = _proc_status_bytes('VmRSS')
    model = build_model(cfg, device)
    optim_wrapper = build_optim_wrapper(model, cfg, spec['precision'], device)
    rss_built = _proc_status_bytes('VmRSS')
    data = train_batch(model, spec['batch'], spec['crop'])
    result = measure_training(model, optim_wrapper, data, spec['warmup'], spec['iters'],
                              device)
    result.update(train_peak_memory_bytes=_proc_status_bytes('VmHWM') - rss0,
                  train_model_memory_bytes=rss_built - rss0,
                  torch_threads=torch.get_num_threads())
    return result


def train_server():
    """Import the stack once, then for every spec (one JSON line on stdin)
    fork a child that runs :func:`train_worker` and writes its result to
    ``spec['out']``; reply the child's exit code (one line on stdout). The
    server itself never builds a model, so every child starts from the same
    clean process."""
    import traceback
    import torch  # noqa: F401
    import mmgscnn  # noqa: F401
    from mmengine.optim import OptimWrapper  # noqa: F401
    from mmseg.structures import SegDataSample  # noqa: F401
    reply = os.fdopen(os.dup(1), 'w')
    os.dup2(2, 1)  # anything the models print goes to the log, not the replies
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        spec = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                result = train_worker(spec)
                with open(spec['out'], 'w') as f:
                    json.dump(result, f)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        reply.write(f'{os.waitstatus_to_exitcode(status)}\n')
        reply.flush()


class CPUTrainWorkers:
    """Runs CPU training measurements each in a fresh process, forked from
    one :func:`train_server` (which imports torch/mmseg once, saving a few
    seconds per measurement)."""

    def __init__(self):
        if not osp.isfile('/proc/self/clear_refs'):
            raise BenchmarkError('--device cpu: peak memory on the CPU is read from '
                                 'Linux /proc (VmHWM); run on Linux or with --device cuda')
        self._tmp = tempfile.TemporaryDirectory(prefix='mmgscnn-bench-')
        self._log = open(osp.join(self._tmp.name, 'server.log'), 'w+')
        self._proc = subprocess.Popen(
            [sys.executable, '-m', SERVER_MODULE], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, text=True, cwd=REPO)
        self._count = 0

    def run(self, col, options, precision):
        """Training figures of one column and precision -> result dict."""
        self._count += 1
        out = osp.join(self._tmp.name, f'result{self._count}.json')
        spec = dict(path=col['path'], options=col['options'],
                    cfg_options=options.cfg_options or {}, crop=list(options.crop),
                    batch=options.batch, precision=precision, warmup=options.warmup,
                    iters=options.iters, threads=options.threads, out=out)
        self._log.seek(0, os.SEEK_END)
        start = self._log.tell()
        self._proc.stdin.write(json.dumps(spec) + '\n')
        self._proc.stdin.flush()
        reply = self._proc.stdout.readline().strip()
        if reply != '0' or not osp.isfile(out):
            self._log.flush()
            self._log.seek(start)
            raise RuntimeError(f'training measurement of {col["config"]} ({precision}) '
                               f'failed in its worker process (exit {reply or "?"}):\n'
                               f'{self._log.read()[-4000:]}')
        with open(out) as f:
            return json.load(f)

    def close(self):
        if self._proc.stdin:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log.close()
        self._tmp.cleanup()


if __name__ == '__main__':
    train_server()
