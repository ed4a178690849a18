"""Parallel plumbing of :mod:`histo.batch.run`: Dask clusters and progress bars.

One task per slide, on a local cluster of worker processes or an existing ``distributed``
scheduler; workers write the slide folders and report tile progress as worker events
(``Worker.log_event``), which the client shows with tqdm on stderr.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable

from histo.batch.slides import ScoreParams, cohort_row, process_slide
from histo.errors import HistoInputError

log = logging.getLogger(__name__)

#: How long to wait for a remote scheduler before giving up.
CONNECT_TIMEOUT = "20s"


_ADDRESS = re.compile(r"(?:[a-z][a-z0-9+.-]*://)?(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}")


def resolve_scheduler(scheduler: str | None) -> str | None:
    """The scheduler address to connect to, checked before any work (one-line errors).

    Accepts ``tcp://host:port`` (any ``scheme://host:port``), ``host:port``, or the path of a
    scheduler file written by ``dask scheduler --scheduler-file FILE`` (its ``address``).

    Examples
    --------
    >>> resolve_scheduler("tcp://10.0.0.5:8786")
    'tcp://10.0.0.5:8786'
    >>> resolve_scheduler("not a url")
    Traceback (most recent call last):
    ...
    histo.errors.HistoInputError: not a url: not a Dask scheduler address; give tcp://host:8786 or the path of a scheduler file
    """
    if scheduler is None:
        return None
    text = str(scheduler).strip()
    path = Path(text).expanduser()
    if path.is_file():
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
            address = info["address"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise HistoInputError("is not a Dask scheduler file (JSON with an 'address', as "
                                  "written by dask scheduler --scheduler-file); give the file "
                                  "or tcp://host:8786", path=text) from err
        if not isinstance(address, str) or not _ADDRESS.fullmatch(address.strip()):
            raise HistoInputError(f"holds the address {address!r}, not tcp://host:port; write the "
                                  "scheduler file again", path=text)
        return address.strip()
    if not _ADDRESS.fullmatch(text):
        hint = " (no such scheduler file)" if ("/" in text and "://" not in text) else ""
        raise HistoInputError(f"not a Dask scheduler address{hint}; give tcp://host:8786 or the "
                              "path of a scheduler file", path=text)
    return text


def run_dask(jobs, params: ScoreParams, force, slide_fn, progress, workers, scheduler) -> list[dict]:
    """One task per slide on a local cluster or a remote scheduler; rows in job order."""
    import dask
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    _quiet_distributed()
    try:
        if scheduler:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        else:
            with dask.config.set({"distributed.scheduler.allowed-failures": 1,
                                  "distributed.nanny.pre-spawn-environ": _thread_env(workers)}):
                cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1,
                                       processes=True, dashboard_address=None,
                                       scheduler_kwargs={"dashboard": False},
                                       silence_logs=logging.ERROR)
            client = Client(cluster)
    except (OSError, TimeoutError, ValueError) as err:
        where = scheduler or f"a local cluster of {workers} workers"
        raise HistoInputError(f"cannot start or reach the Dask scheduler at {where}: {err}; "
                              "check the address (tcp://host:8786) and that it is running") from err
    try:
        client.subscribe_topic(_PROGRESS_TOPIC, progress.on_event)
        futures = {client.submit(_dask_task, jobs[i], params, force, slide_fn, pure=False,
                                 key=f"histo-slide-{jobs[i].slide_id}-{time.time_ns()}",
                                 priority=len(jobs) - rank): i
                   for rank, i in enumerate(largest_first(jobs))}
        rows: list[dict | None] = [None] * len(jobs)
        for future in as_completed(futures):
            i = futures[future]
            try:
                rows[i] = future.result()
            except Exception as err:  # noqa: BLE001 - a dead worker is one slide's error
                rows[i] = cohort_row(jobs[i], None, status="error",
                                     error=f"the worker scoring this slide failed ({err!r}); "
                                           "it may have run out of memory or crashed")
            progress.slide_done(rows[i])
        return rows  # type: ignore[return-value]
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


_PROGRESS_TOPIC = "histo-tiles"


def _quiet_distributed() -> None:
    """Dask's own INFO chatter (scheduler, nannies) only with ``histo -vv``."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("distributed").setLevel(logging.WARNING)


def largest_first(jobs) -> list[int]:
    """Job indices by decreasing file size: the biggest slides start first, so that with
    several workers the small ones fill in around them (longest-processing-time order)."""
    def size(i: int) -> int:
        try:
            return jobs[i].path.stat().st_size
        except OSError:
            return 0
    return sorted(range(len(jobs)), key=lambda i: (-size(i), i))


def _thread_env(workers: int) -> dict[str, Any]:
    """Worker environment: Dask's defaults, with every worker allowed all the machine's cores
    (numpy, OpenMP and torch threads) and OpenMP threads that sleep instead of spinning.

    Sharing the cores out (cores / workers threads each) starves the last big slide of a batch:
    on ``data/real`` (one slide is 85 % of the work) ``--workers 2`` ran at 0.79x of
    ``--workers 1``; with all cores per worker and passive waiting it runs at 1.05x, and a
    cohort of similar slides keeps its 1.23x (``benchmarks/bench_batch.py``).
    """
    import dask

    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    threads = max(1, os.cpu_count() or 1)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = threads
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def _dask_task(job, params: ScoreParams, force: bool, slide_fn) -> dict[str, Any]:
    """Runs on a worker: score one slide, report tile progress as worker events."""
    import dask
    from distributed import get_worker

    worker = get_worker()
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - last[0] > 0.5:
            last[0] = now
            worker.log_event(_PROGRESS_TOPIC, {"slide": job.slide_id, "done": done, "total": total})

    with dask.config.set(scheduler="synchronous"):  # one thread per worker; no nested cluster use
        return process_slide(job, params, force=force, slide_fn=slide_fn, progress=report)


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def progress_line(done: int, total: int, row: dict[str, Any]) -> str:
    """The plain progress line of a finished slide (logs, cluster jobs: no terminal).

    Examples
    --------
    >>> progress_line(2, 5, {"slide_id": "s2", "status": "scored", "n_fibers": 410, "seconds": 12.34})
    '[2/5] s2: scored, 410 fibers, 12.3 s'
    >>> progress_line(3, 5, {"slide_id": "s3", "status": "error", "error": "not an image"})
    '[3/5] s3: error: not an image'
    """
    text = f"[{done}/{total}] {row.get('slide_id')}: {row.get('status')}"
    if row.get("status") == "error":
        return f"{text}: {str(row.get('error') or '')[:200]}"
    if row.get("n_fibers") is not None:
        text += f", {row['n_fibers']} fibers"
    if row.get("seconds"):
        text += f", {float(row['seconds']):.1f} s"
    return text


class Progress:
    """Progress on stderr: on a terminal, tqdm bars (one for slides, one per slide being tiled);
    otherwise (a log file, a cluster job) one plain line per finished slide."""

    MIN_TILES = 4

    def __init__(self, n_slides: int, *, enabled: bool, stream=None):
        self.enabled = enabled
        self.tile_bars: dict[str, Any] = {}
        self.bar = None
        self.stream = stream or sys.stderr
        self.n_slides, self.n_done = n_slides, 0
        self.plain = enabled and not _is_terminal(self.stream)
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=n_slides, unit="slide", desc="slides", dynamic_ncols=True,
                            disable=None)  # None: only on a terminal

    def tiles_callback(self, slide_id: str) -> Callable[[int, int], None]:
        return lambda done, total: self.tiles(slide_id, done, total)

    def tiles(self, slide_id: str, done: int, total: int) -> None:
        if not self.enabled or self.plain or total < self.MIN_TILES:
            return
        from tqdm import tqdm

        bar = self.tile_bars.get(slide_id)
        if bar is None:
            bar = self.tile_bars[slide_id] = tqdm(total=total, unit="tile", desc=slide_id[:24],
                                                  leave=False, dynamic_ncols=True, disable=None)
        bar.total = total
        bar.update(done - bar.n)
        if done >= total:
            self.tile_bars.pop(slide_id).close()

    def on_event(self, event) -> None:
        _, msg = event
        self.tiles(msg["slide"], msg["done"], msg["total"])

    def slide_done(self, row: dict[str, Any]) -> None:
        self.n_done += 1
        bar = self.tile_bars.pop(row["slide_id"], None)
        if bar is not None:
            bar.close()
        if self.plain:
            self.stream.write(progress_line(self.n_done, self.n_slides, row) + "\n")  # like tqdm: to stderr
            self.stream.flush()
        if self.bar is not None:
            self.bar.set_postfix_str(f"{row['slide_id'][:20]}: {row['status']}")
            self.bar.update(1)

    def close(self) -> None:
        for bar in list(self.tile_bars.values()):
            bar.close()
        if self.bar is not None:
            self.bar.close()
