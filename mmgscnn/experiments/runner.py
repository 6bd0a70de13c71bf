"""Train, then test, one config in subprocesses; several such runs side by side.

Each run is ``tools/train.py`` followed by ``tools/test.py`` on the last
checkpoint, each in its own process, exactly as a user would call them. A
run whose ``metrics.json`` exists is reused; one with a checkpoint resumes.
"""
import datetime
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

#: Repository root: the runner calls the tools of this checkout.
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools')
METRICS_FILE = 'metrics.json'
LOG_FILE = 'run.log'

FINISHED, REUSED, TIMED_OUT, FAILED, NOT_STARTED = (
    'finished', 'reused', 'timed out', 'failed', 'not started')


class ToolFailed(RuntimeError):
    """A tool exited with an error."""


class ToolTimedOut(RuntimeError):
    """A tool was stopped at the run's time limit."""


@dataclass
class Run:
    """One experiment: train ``config`` into ``work_dir``, test the last checkpoint.

    Args:
        config: config file.
        work_dir: checkpoints, logs, ``metrics.json`` and ``run.log``.
        train_options, test_options: ``k=v`` items for the ``--cfg-options``
            of ``tools/train.py`` and ``tools/test.py``.
        amp: train with ``--amp`` (CUDA only).
        env: environment variables set for both tools.
        name: how messages name the run.
    """
    config: str
    work_dir: str
    train_options: Sequence[str] = ()
    test_options: Sequence[str] = ()
    amp: bool = False
    env: Dict[str, str] = field(default_factory=dict)
    name: str = ''


@dataclass
class RunResult:
    """What a run gave. ``status``: finished, reused (metrics of an earlier
    call), timed out, failed or not started (``error`` says why). Times in
    seconds, start and end as UTC ISO dates; peak
    memory: resident set size of the training process in bytes (None when
    the run was reused)."""
    status: str
    metrics: Optional[Dict[str, float]] = None
    checkpoint: Optional[str] = None
    train_peak_rss: Optional[int] = None
    seconds: float = 0.0
    started: str = ''
    ended: str = ''
    commands: List[str] = field(default_factory=list)
    error: str = ''


def tool_command(tool: str, *args: str) -> List[str]:
    """``python tools/<tool>.py args`` with this interpreter."""
    path = osp.join(TOOLS, tool + '.py')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} does not exist: the experiment runner calls the '
                                'tools of a checkout of the mmgscnn repository')
    return [sys.executable, path, *args]


def _exit_code(status: int) -> int:
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)


def run_tool(cmd: List[str], log: Optional[str] = None, env: Optional[dict] = None,
             deadline: Optional[float] = None) -> int:
    """Run ``cmd`` with its output appended to the file ``log`` (or on this
    terminal); returns the peak resident memory of that process in bytes.

    Raises :class:`ToolTimedOut` (after killing it) when it is still running at
    ``deadline`` (``time.monotonic()`` seconds), :class:`ToolFailed` when it
    exits with an error (the message ends with the log's tail).
    """
    shown = ' '.join(osp.relpath(c) if osp.isabs(c) and c.startswith(REPO) else c for c in cmd)
    out = open(log, 'a') if log else None
    try:
        if out:
            out.write(f'$ {shown}\n')
            out.flush()
        else:
            print(f'$ {shown}', flush=True)
        if deadline is not None and time.monotonic() >= deadline:
            raise ToolTimedOut(f'not started, no time left: {shown}')
        proc = subprocess.Popen(cmd, env=env, stdout=out,
                                stderr=subprocess.STDOUT if out else None)
        while True:
            pid, status, usage = os.wait4(proc.pid, 0 if deadline is None else os.WNOHANG)
            if pid:
                break
            if time.monotonic() >= deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                proc.returncode = -9
                raise ToolTimedOut(f'stopped at the time limit: {shown}')
            time.sleep(0.2)
    finally:
        if out:
            out.close()
    proc.returncode = _exit_code(status)
    if proc.returncode:
        tail = open(log).read()[-3000:] if log else ''
        raise ToolFailed(f'{shown} failed (exit {proc.returncode})'
                         + (f'; log {log}:\n{tail}' if log else ''))
    return usage.ru_maxrss * 1024  # Linux: KiB


def latest_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint mmengine's ``last_checkpoint`` file names, or None."""
    path = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return f.read().strip()


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')


def train_and_test(run: Run, log: Optional[str] = None, timeout: Optional[float] = None,
                   deadline: Optional[float] = None, fresh: bool = False) -> RunResult:
    """Train ``run.config`` (resuming from its last checkpoint), then test
    that checkpoint; the metrics also go to ``work_dir/metrics.json``.

    Args:
        run: what to run.
        log: file for the tools' output (default: this terminal).
        timeout: seconds for training and test together; at the limit the
            tool is killed and the result says ``timed out``.
        deadline: the same as a ``time.monotonic()`` time (the earlier of
            both counts).
        fresh: delete ``work_dir`` first (no reuse, no resume).
    """
    metrics_file = osp.join(run.work_dir, METRICS_FILE)
    if fresh and osp.isdir(run.work_dir):
        shutil.rmtree(run.work_dir)
    if osp.isfile(metrics_file):
        with open(metrics_file) as f:
            return RunResult(REUSED, metrics=json.load(f),
                             checkpoint=latest_checkpoint(run.work_dir))
    os.makedirs(run.work_dir, exist_ok=True)
    start, started = time.monotonic(), _now()
    if timeout:
        deadline = min(start + timeout, deadline or float('inf'))
    env = dict(os.environ, **run.env)
    result = RunResult(FINISHED, started=started)
    resume = ['--resume'] if latest_checkpoint(run.work_dir) else []
    train = tool_command('train', run.config, '--work-dir', run.work_dir, *resume,
                         *(['--amp'] if run.amp else []), *_options(run.train_options))
    partial = metrics_file + '.partial'
    try:
        result.commands.append(' '.join(train))
        result.train_peak_rss = run_tool(train, log, env, deadline)
        result.checkpoint = latest_checkpoint(run.work_dir)
        test = tool_command('test', run.config, result.checkpoint, '--work-dir',
                            osp.join(run.work_dir, 'test'), '--metrics-out', partial,
                            *_options(run.test_options))
        result.commands.append(' '.join(test))
        run_tool(test, log, env, deadline)
        os.replace(partial, metrics_file)
        with open(metrics_file) as f:
            result.metrics = json.load(f)
    except ToolTimedOut as err:
        result.status, result.error = TIMED_OUT, str(err)
    except ToolFailed as err:
        result.status, result.error = FAILED, str(err)
    result.seconds, result.ended = time.monotonic() - start, _now()
    return result


def _options(options: Sequence[str]) -> List[str]:
    return ['--cfg-options', *options] if options else []


def run_all(runs: Sequence[Run], jobs: int = 1, timeout: Optional[float] = None,
            time_limit: Optional[float] = None) -> Iterator[Tuple[int, RunResult]]:
    """Run ``runs`` with up to ``jobs`` at a time, in the given order, each
    logging to ``work_dir/run.log``; yields (index in ``runs``, result) as
    each ends.

    Args:
        timeout: seconds per run (training and test).
        time_limit: seconds for all runs from now: runs still going then are
            stopped (``timed out``), runs not started are ``not started``
            (runs finished in an earlier call are reused all the same).
    """
    if jobs < 1:
        raise ValueError(f'jobs must be >= 1, got {jobs}')
    deadline = time.monotonic() + time_limit if time_limit else None

    def one(run: Run) -> RunResult:
        finished_before = osp.isfile(osp.join(run.work_dir, METRICS_FILE))
        if deadline is not None and time.monotonic() >= deadline and not finished_before:
            return RunResult(NOT_STARTED, error=f'the time limit ({time_limit:g} s) had '
                             'passed before it could start')
        print(f'[run] start {run.name or run.work_dir}', flush=True)
        os.makedirs(run.work_dir, exist_ok=True)
        result = train_and_test(run, osp.join(run.work_dir, LOG_FILE), timeout, deadline)
        print(f'[run] {result.status} {run.name or run.work_dir} ({result.seconds:.0f} s)'
              + (f': {result.error.splitlines()[0]}' if result.error else ''), flush=True)
        return result

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(one, run): i for i, run in enumerate(runs)}
        for future in as_completed(futures):
            yield futures[future], future.result()


__all__ = ['Run', 'RunResult', 'train_and_test', 'run_all', 'run_tool', 'tool_command',
           'latest_checkpoint', 'ToolFailed', 'ToolTimedOut', 'FINISHED', 'REUSED',
           'TIMED_OUT', 'FAILED', 'NOT_STARTED']
