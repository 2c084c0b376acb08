"""A fix for Snakemake's scheduler: one pending re-evaluation, not one per scheduling pass.

Snakemake 9 (9.27.1 here) limits job starts with ``--max-jobs-per-timespan``, whose default
is ``100/1s``. Every scheduling pass that ends with jobs ready but no free cores asks for a
re-evaluation one timespan later: a new ``threading.Timer`` that releases the scheduler's
semaphore, which runs another pass, which asks for another re-evaluation. Each pass starts
a chain of its own, and a chain never ends while any job is waiting for cores. Every job
that finishes while others wait adds a chain, so the passes per second grow with the number
of jobs already run.

On the demo (2 cores, 553 jobs) this is what made a long job such as ``train_deep`` take
twice as long inside the whole run as alone: when it started, some 320 timer threads were
each running a scheduling pass a second, and Snakemake's own process used half a core
beside it (444 s of CPU over an 18-minute run, measured with py-spy and ``/proc``). The
same cost falls on any workflow whose many short jobs queue behind a long one.

:func:`coalesce_reevaluations` replaces the method so that at most one re-evaluation is
pending: a request while one is pending is dropped unless it asks for an earlier time. The
scheduler still re-checks once per timespan while jobs wait, which is all the rate limiter
needs, and the timer is a daemon thread, so a finished run does not wait for it to expire.
The Snakefile installs it in the Snakemake process; it changes which jobs run and when by
nothing but the scheduler's own CPU.
"""

from __future__ import annotations

import threading
import time

__all__ = ["coalesce_reevaluations"]

_MARK = "_avsep_coalesced"


def _coalesced(self, delay: float) -> None:
    state = self.__dict__.get("_avsep_reevaluation")
    if state is None:
        # dict.setdefault is atomic: two threads asking at once share one state.
        state = self.__dict__.setdefault("_avsep_reevaluation", {"lock": threading.Lock(), "timer": None, "due": 0.0})
    due = time.monotonic() + delay
    with state["lock"]:
        pending = state["timer"]
        if pending is not None:
            if state["due"] <= due:
                return
            pending.cancel()

        def fire() -> None:
            with state["lock"]:
                # Only the timer still pending clears the slot: a cancelled one that fired
                # anyway (cancel raced its wake-up) must not drop its replacement.
                if state["timer"] is timer:
                    state["timer"] = None
            self._open_jobs.release()

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        state["timer"], state["due"] = timer, due
        timer.start()


setattr(_coalesced, _MARK, True)


def coalesce_reevaluations(scheduler_cls=None) -> bool:
    """Install the one-pending-timer re-evaluation on Snakemake's ``JobScheduler`` (or on
    ``scheduler_cls``). Returns whether it was installed now: False when it already was, or
    when this Snakemake has no such method (a version that reorganized its scheduler), in
    which case nothing is changed."""
    if scheduler_cls is None:
        try:
            from snakemake.scheduling.job_scheduler import JobScheduler as scheduler_cls
        except ImportError:
            return False
    original = getattr(scheduler_cls, "_schedule_reevalutation", None)
    if original is None or getattr(original, _MARK, False):
        return False
    scheduler_cls._avsep_original_reevaluation = original
    scheduler_cls._schedule_reevalutation = _coalesced
    return True
