"""Accuracy study: several configs x several seeds, one table.

Every (config, seed) is one :class:`~mmgscnn.experiments.runner.Run`
(``randomness.seed`` set per seed), trained and tested by the runner, up to
``jobs`` at a time, seed by seed (all configs of the first seed start
first, so a time-boxed study finishes whole seeds). After every run the
JSON report and the Markdown table are written again, so a study stopped at
any point keeps the runs that finished; runs that finished in an earlier
call are reused.
"""
import datetime
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from .environment import device_description, torch_version
from .runner import FAILED, FINISHED, REUSED, Run, RunResult, run_all
from .seed_summary import markdown_table, summarise


def loader_options(num_workers: Optional[int], loader: str) -> List[str]:
    """``--cfg-options`` items giving ``loader`` (e.g. 'train_dataloader')
    ``num_workers`` worker processes (none when ``num_workers`` is None)."""
    if num_workers is None:
        return []
    if num_workers < 0:
        raise ValueError(f'num_workers must be >= 0, got {num_workers}')
    options = [f'{loader}.num_workers={num_workers}']
    if num_workers == 0:  # torch refuses persistent workers without workers
        options.append(f'{loader}.persistent_workers=False')
    return options


def plan_runs(names: Sequence[str], configs: Sequence[str], seeds: Sequence[int],
              work_dir: str, cfg_options: Sequence[str] = (),
              train_only_options: Sequence[str] = (), amp: bool = False,
              num_workers: Optional[int] = None, env: Optional[Dict[str, str]] = None
              ) -> List[Tuple[str, int, Run]]:
    """(name, seed, run) of every config and seed, seed-major; work dirs
    ``work_dir/<name>/seed<seed>``. ``cfg_options`` go to training and test,
    ``train_only_options`` to training only (after the seed, so they win)."""
    if len(names) != len(configs):
        raise ValueError(f'{len(names)} names for {len(configs)} configs')
    if len(set(names)) != len(names):
        raise ValueError(f'names must differ, got {list(names)}')
    plan = []
    for seed in seeds:
        for name, config in zip(names, configs):
            train = [f'randomness.seed={seed}', *cfg_options,
                     *loader_options(num_workers, 'train_dataloader'), *train_only_options]
            test = [*cfg_options, *loader_options(num_workers, 'test_dataloader')]
            plan.append((name, seed, Run(config, osp.join(work_dir, name, f'seed{seed}'),
                                         train, test, amp, dict(env or {}),
                                         f'{name} seed {seed}')))
    return plan


def run_environment(data_root: Optional[str], jobs: int) -> Dict[str, str]:
    """Variables for the runs: the data root of the CamVid and SyntheticStreet
    configs (``CAMVID_ROOT``, ``SYNTHETIC_ROOT``), and with several jobs
    ``OMP_NUM_THREADS`` = cores / jobs unless it is set already."""
    env = {}
    if data_root:
        env['CAMVID_ROOT'] = env['SYNTHETIC_ROOT'] = osp.abspath(data_root)
    if jobs > 1 and 'OMP_NUM_THREADS' not in os.environ:
        env['OMP_NUM_THREADS'] = str(max(1, (os.cpu_count() or 1) // jobs))
    return env


def _run_record(result: RunResult) -> dict:
    record = dict(status=result.status, seconds=round(result.seconds, 1),
                  started=result.started, ended=result.ended, commands=result.commands)
    if result.error:
        record['error'] = result.error
    return record


def run_study(names: Sequence[str], configs: Sequence[str], seeds: Sequence[int],
              work_dir: str, cfg_options: Sequence[str] = (),
              train_only_options: Sequence[str] = (), amp: bool = False, jobs: int = 1,
              num_workers: Optional[int] = None, run_timeout: Optional[float] = None,
              time_limit: Optional[float] = None, data_root: Optional[str] = None,
              out: Optional[str] = None, markdown: Optional[str] = None,
              command: str = '') -> dict:
    """Run the study; returns the report (also written to ``out`` as JSON
    and, as a table, to ``markdown`` after every run).

    Report keys: ``date``, ``device``, ``torch``, ``command``, ``configs``
    (name: file), ``seeds``, ``options``, ``per_seed`` (name: seed: metrics
    of the runs that finished), ``runs`` (name: seed: status, seconds,
    start and end (UTC), commands, error), ``summary`` (name: metric:
    (mean, min, max)), ``header`` (the table's first lines).

    Raises RuntimeError after writing the report when a run failed; runs
    stopped at ``run_timeout`` (seconds per run, training and test) or at
    ``time_limit`` (seconds for the whole study) are only marked ``timed
    out`` (or ``not started``).
    """
    plan = plan_runs(names, configs, seeds, work_dir, cfg_options, train_only_options, amp,
                     num_workers, run_environment(data_root, jobs))
    report = dict(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        device=device_description(), torch=torch_version(), command=command,
        configs=dict(zip(names, configs)), seeds=list(seeds),
        options=dict(cfg_options=list(cfg_options),
                     train_only_options=list(train_only_options), amp=amp, jobs=jobs, num_workers=num_workers, run_timeout=run_timeout,
                     time_limit=time_limit, data_root=data_root),
        per_seed={name: {} for name in names}, runs={name: {} for name in names})
    write_report(report, names, out, markdown)
    for index, result in run_all([run for _, _, run in plan], jobs, run_timeout, time_limit):
        name, seed, _ = plan[index]
        report['runs'][name][seed] = _run_record(result)
        if result.status in (FINISHED, REUSED):
            report['per_seed'][name][seed] = result.metrics
        write_report(report, names, out, markdown)
    failed = [f'{name} seed {seed}: {run["error"]}' for name in names
              for seed, run in report['runs'][name].items() if run['status'] == FAILED]
    if failed:
        raise RuntimeError(f'{len(failed)} of {len(plan)} runs failed (the report holds the '
                           'others):\n' + '\n'.join(failed))
    return report


def write_report(report: dict, names: Sequence[str], out: Optional[str],
                 markdown: Optional[str]) -> str:
    """Fill ``summary`` and ``header`` in ``report`` and write it (JSON) and
    its table (Markdown); returns the Markdown text."""
    report['summary'] = summarise({n: report['per_seed'][n] for n in names})
    seeds = report['seeds']
    missing = [f'{n} seed {s} ({report["runs"][n].get(s, {}).get("status", "pending")})'
               for s in seeds for n in names if s not in report['per_seed'][n]]
    report['header'] = [
        f'Accuracy study, {report["date"]}, device: {report["device"]}, '
        f'torch {report["torch"]}.',
        f'Command: `{report["command"]}`',
        'Configs: ' + ', '.join(f'{n} = `{c}`' for n, c in report['configs'].items()),
    ] + ([f'Without results: {", ".join(missing)}.'] if missing else [])
    text = '\n'.join(report['header'] + [
        '', f'Mean over seeds {seeds} (min..max), percent.', '',
        *markdown_table(report['summary'], names)]) + '\n'
    for path, content in ((out, json.dumps(report, indent=1)), (markdown, text)):
        if path:
            os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
            with open(path, 'w') as f:
                f.write(content)
    return text


#: Keys of a recipe file: the options of ``tools/accuracy_study.py``.
RECIPE_KEYS = ('names', 'configs', 'seeds', 'work_dir', 'data_root', 'cfg_options',
               'train_only_options', 'amp', 'jobs', 'num_workers', 'run_timeout',
               'time_limit', 'out', 'markdown')


def load_recipe(path: str) -> dict:
    """The settings of a recipe file (Python, read by mmengine's Config):
    any of :data:`RECIPE_KEYS`; other names are an error."""
    from mmengine.config import Config
    if not osp.isfile(path):
        raise FileNotFoundError(f'recipe file {path!r} does not exist')
    recipe = Config.fromfile(path).to_dict()
    unknown = sorted(set(recipe) - set(RECIPE_KEYS))
    if unknown:
        raise ValueError(f'recipe {path} sets unknown keys {unknown}; a recipe sets any of '
                         f'{list(RECIPE_KEYS)}')
    return recipe


__all__ = ['run_study', 'load_recipe', 'RECIPE_KEYS', 'plan_runs', 'loader_options',
           'run_environment', 'write_report']
