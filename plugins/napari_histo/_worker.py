"""Long jobs off the GUI thread: progress, cancel, errors reported instead of raised.

:func:`start_job` runs ``func(**kwargs, report=...)`` in Qt's thread pool with superqt's
``create_worker`` (napari's variant also lists the job in napari's activity manager, which
keeps every worker, and with it our callbacks and the viewer, alive until napari exits). ``report(done, total, stage)`` is handed to the job
and re-emitted as a Qt signal on the GUI thread; once :meth:`Job.cancel` is called, the next
``report`` raises :class:`Cancelled` inside the job, so it stops at its next progress step
(each segmentation tile). Errors never propagate into the viewer: they arrive in
``on_error`` as the exception object.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from qtpy.QtCore import QObject, QTimer, Signal

from histo.batch import pipeline
from histo.errors import HistoError

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised inside a job when the user pressed Cancel."""


class _Relay(QObject):
    progress = Signal(int, int, str)


class Job:
    """A running job: :meth:`cancel` it, or ask :attr:`running`."""

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self.relay = _Relay()
        self.worker = None
        self.running = False
        self.cancelled = False

    def report(self, done: int, total: int, stage: str = "") -> None:
        """Progress callback for the job (worker thread); raises :class:`Cancelled` when asked."""
        if self._cancel.is_set():
            raise Cancelled()
        self.relay.progress.emit(int(done), int(total), stage)

    def cancel(self) -> None:
        """Ask the job to stop at its next progress report."""
        self._cancel.set()
        self.cancelled = True

    def release(self) -> None:
        """Drop the worker and the signal connections once the job is over.

        Qt holds connected Python callables on the C++ side, out of sight of the garbage
        collector; a finished job must cut them or it keeps the viewer alive.
        """
        signals = [self.relay.progress]
        if self.worker is not None:
            w = self.worker.signals
            signals += [w.started, w.returned, w.errored, w.finished]
        for signal in signals:
            try:
                signal.disconnect()
            except (TypeError, RuntimeError):
                pass
        self.worker = None


def start_job(
    func: Callable[..., Any],
    *,
    on_done: Callable[[Any], None],
    on_error: Callable[[BaseException], None],
    on_progress: Callable[[int, int, str], None] | None = None,
    on_finished: Callable[[], None] | None = None,
    **kwargs: Any,
) -> Job:
    """Run ``func(**kwargs, report=job.report)`` in a worker thread.

    Parameters
    ----------
    func : callable
        The job; must accept a ``report`` keyword (``report(done, total, stage)``).
    on_done : callable(result)
        Called on the GUI thread with the return value (not after a cancel).
    on_error : callable(exception)
        Called on the GUI thread with the exception; a cancel arrives as :class:`Cancelled`.
    on_progress : callable(done, total, stage), optional
    on_finished : callable(), optional
        Called on the GUI thread after done or error.
    """
    from superqt.utils import create_worker  # napari's version keeps every worker in the window

    job = Job()
    if on_progress is not None:
        job.relay.progress.connect(on_progress)

    def _call(callback, *args):
        try:
            callback(*args)
        except RuntimeError as err:  # the widget was deleted while the job ran (viewer closed)
            if "deleted" not in str(err):
                raise
            log.debug("histo job result dropped: %s", err)

    def _returned(result):
        if job.cancelled:
            _call(on_error, Cancelled())
        else:
            _call(on_done, result)

    def _errored(err):
        name = getattr(func, "__name__", func)
        if isinstance(err, HistoError):  # the user's input: the message says it all
            log.warning("histo job %s: %s", name, err)
        elif not isinstance(err, Cancelled):
            log.error("histo job %s failed: %s", name, err, exc_info=err)
        _call(on_error, err)

    def _finished():
        job.running = False
        if on_finished is not None:
            _call(on_finished)
        QTimer.singleShot(0, job.release)  # not while the worker is still emitting

    worker = create_worker(
        func,
        report=job.report,
        _start_thread=False,
        _ignore_errors=True,
        **kwargs,
    )
    worker.returned.connect(_returned)
    worker.errored.connect(_errored)
    worker.finished.connect(_finished)
    job.worker = worker
    job.running = True
    worker.start()
    return job


def analyse_image(image, *, stain: str, channel: int | None, method: str, settings, report, model=None):
    """Segment, measure and score an in-memory slide (the "Segment and score" job).

    Returns
    -------
    histo.batch.pipeline.SlideResult
    """
    report(0, 1, "segmenting")

    def progress(done: int, total: int) -> None:
        report(done, total, "segmenting" if done < total else "measuring and scoring")

    result = pipeline.segment_and_analyze(image, stain=stain, channel=channel, method=method,
                                 settings=settings, progress=progress, model=model)
    report(1, 1, "done")
    return result
