"""Where a training iteration's wall time goes: the ``time`` and ``calls`` of each ``log.jsonl`` record.

One :class:`Timings` per iteration; the loop and :class:`gridcore.train.loop.ModelProblem`
time their calls with :meth:`Timings.part`, and :meth:`Timings.record` adds
what was not timed as ``other`` and the iteration's ``total``.
"""

import time
from contextlib import contextmanager

PARTS = ("gn", "forward", "gradient", "loss", "batch", "eval")
"""The timed parts: Gauss-Newton products, the forward pass they linearise about,
gradients, loss evaluations, minibatch draws, held-out evaluations."""


class Timings:
    """Seconds and calls per part (:data:`PARTS`) since construction, by ``time.perf_counter``."""

    def __init__(self):
        self.start = time.perf_counter()
        self.seconds = dict.fromkeys(PARTS, 0.0)
        self.calls = dict.fromkeys(PARTS, 0)

    @contextmanager
    def part(self, name):
        """Time the block as one call of ``name`` (one of :data:`PARTS`; blocks must not nest)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - t0
            self.calls[name] += 1

    def record(self):
        """``{"time": {part: s, "other": s, "total": s}, "calls": {part: n}}`` up to now.

        ``total`` is the wall time since construction (s); ``other`` is what
        no part covers, so the parts and ``other`` sum to ``total``.
        """
        total = time.perf_counter() - self.start
        other = max(total - sum(self.seconds.values()), 0.0)
        return {"time": {**self.seconds, "other": other, "total": total}, "calls": dict(self.calls)}
