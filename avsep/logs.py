"""Logging for rule scripts: to the rule's log file and to the console at once."""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Iterator

from avsep.errors import InputError

__all__ = ["script_log", "progress_logger"]


def progress_logger(log: logging.Logger, what: str):
    """A ``progress(done, total)`` callback that logs ``"<what> done/total"`` at every tenth
    of the way and at the end, however many steps there are."""
    logged = [0]

    def progress(done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if tenth > logged[0] or done == total:
            log.info("%s %d/%d", what, done, total)
            logged[0] = tenth

    return progress


@contextlib.contextmanager
def script_log(log_path: str | Path, name: str = "avsep") -> Iterator[logging.Logger]:
    """Send log records to ``log_path`` and stderr for the duration of a rule script.

    An :class:`~avsep.errors.InputError` is logged as its message alone and ends the process
    with status 1, so the user reads what is wrong rather than a traceback. Any other error
    is logged with its traceback and re-raised.
    """
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    handlers = [logging.FileHandler(log_path, mode="w"), logging.StreamHandler(sys.stderr)]
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers, force=True
    )
    logger = logging.getLogger(name)
    try:
        yield logger
    except InputError as err:
        logger.error("%s", err)
        logging.shutdown()
        sys.exit(1)
    except Exception:
        logger.exception("failed")
        logging.shutdown()
        raise
