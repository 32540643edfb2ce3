"""Wait for an idle machine before timing (benchmarks on shared machines)."""

import os
import time


def _cpu_times():
    with open("/proc/stat") as fh:
        fields = [int(v) for v in fh.readline().split()[1:]]
    return fields[3] + fields[4], sum(fields)         # idle + iowait, total


def wait_for_idle(threshold=0.95, window=2.0, timeout=None):
    """Block until the CPUs were idle >= ``threshold`` of a ``window`` (Linux only).

    On a machine shared with other jobs, timings taken while they run measure
    them, not the kernels. Enabled by ``GRIDCORE_BENCH_WAIT_IDLE=1`` (timeout
    ``GRIDCORE_BENCH_WAIT_TIMEOUT`` seconds, default 900); returns the idle
    fraction last seen, or None when disabled.
    """
    if os.environ.get("GRIDCORE_BENCH_WAIT_IDLE", "") in ("", "0") or not os.path.exists("/proc/stat"):
        return None
    timeout = float(os.environ.get("GRIDCORE_BENCH_WAIT_TIMEOUT", 900)) if timeout is None else timeout
    end = time.monotonic() + timeout
    while True:
        idle0, total0 = _cpu_times()
        time.sleep(window)
        idle1, total1 = _cpu_times()
        idle = (idle1 - idle0) / max(total1 - total0, 1)
        if idle >= threshold or time.monotonic() > end:
            return round(idle, 3)
