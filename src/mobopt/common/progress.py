"""Progress lines for long loops (training steps, evaluated images), so a long job is never silent.

One line at most every ``interval`` seconds, to the module's logger (stderr, and
so the rule's log file): what is done out of the total, the throughput in images
per second over the last interval, and the time left at that pace.  The clock
is injectable, so tests drive it by hand.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


def duration(seconds: float) -> str:
    """``42 s``, ``12 min 30 s``, ``3 h 05 min``: a time left as a person reads it."""
    if seconds < 1:
        return "<1 s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Progress:
    """Counts units of work (steps, images) and logs a progress line every ``interval`` seconds.

    ``advance(n, images=...)`` after each unit of work: ``images`` (default
    ``n``) counts towards the images-per-second figure, so a training step of
    128 images reports images, not steps, per second.
    """

    def __init__(self, label: str, total: int, unit: str = "images", *, interval: float = 30.0,
                 clock: Callable[[], float] = time.monotonic, logger: logging.Logger | None = None):
        self.label, self.total, self.unit, self.interval = label, int(total), unit, float(interval)
        self.clock, self.logger = clock, logger or log
        self.done = 0
        self.images = 0
        self.lines = 0
        self._mark = (self.clock(), 0, 0)  # time, done, images at the last line (or the start)

    def advance(self, n: int = 1, *, images: int | None = None, note: str = "") -> bool:
        """Record ``n`` more units; log a line when ``interval`` seconds have passed since the last one."""
        self.done += n
        self.images += n if images is None else images
        now = self.clock()
        then, done_then, images_then = self._mark
        elapsed = now - then
        if elapsed < self.interval or elapsed <= 0:
            return False
        unit_rate = (self.done - done_then) / elapsed
        image_rate = (self.images - images_then) / elapsed
        left = max(0, self.total - self.done)
        eta = duration(left / unit_rate) if unit_rate > 0 else "unknown"
        pct = 100.0 * self.done / self.total if self.total else 100.0
        self.logger.info("%s: %s%d/%d %s (%.1f%%), %.1f img/s, ETA %s", self.label, f"{note}, " if note else "",
                         self.done, self.total, self.unit, pct, image_rate, eta)
        self._mark = (now, self.done, self.images)
        self.lines += 1
        return True
