"""The memory a training run needs, checked against the machine's before the run starts.

:func:`run_memory` counts the arrays that grow with the run's sizes, in
float64 values (8 bytes), with M = ``n_trials``, Mc = ``curvature_trials``,
Me = ``eval_trials``, T = ``n_steps``, N = ``n_units``, Nin and Nout the
inputs and outputs, P the parameters and Np = N + Nout::

    parameters     P x V        V = 8 for Adam; for HF 12 working vectors plus the CG
                                iterates kept for backtracking (one per ceil(gamma^j) <= cg_max_iters)
    trials         (M + Me) T (Nin + Nout + 5)
                                inputs, targets and the trajectories (positions, speed, heading,
                                boundary) of the minibatch and the held-out trials;
                                + (M + Me) T N with noise_source "array" (the noise array)
    forward state  Mc T (N + Nout)     rates and outputs HF linearises about (kept through CG)
    scratch        numpy: 3 M T N      states, rates and their gradient, all steps
                   numba: (M + Mc) T (N + Nout)   the kept rates and errors of the gradient
                                                  and of the GN product, all steps
                   c:     K T 2 Np     per thread (K = threads) a block of trials' states
                                       and gradients over the steps

Smaller arrays (weights' packed copies, per-step vectors) are left out, so
the estimate is a lower bound: a run refused by :func:`check_run_memory`
cannot fit, and one near the limit may still run out.
"""

import math
import os

__all__ = ["run_memory", "machine_memory", "check_run_memory"]

_BYTES = 8  # float64


def _saved_iterates(max_iters, gamma):
    """How many CG iterates HF keeps for backtracking: ``i = ceil(gamma**j) <= max_iters``, and the last."""
    kept, j = set(), 0
    while math.ceil(gamma ** j) <= max_iters:
        kept.add(math.ceil(gamma ** j))
        j += 1
    return len(kept) + 1


def run_memory(cfg, backend, threads):
    """Bytes of the large arrays of a training run, by part (see the module docstring).

    Parameters
    ----------
    cfg : RunConfig
    backend : {"numpy", "numba", "c"}
        The backend that will run it (``get_backend(...).name``).
    threads : int or None
        Its threads (None: one per core).

    Returns
    -------
    dict
        ``"parameters"``, ``"trials"``, ``"forward state"``, ``"scratch"``: bytes.
    """
    opt, task = cfg.optimizer, cfg.task
    threads = threads or os.cpu_count() or 1
    n, n_in, n_out = cfg.shape
    m, mc, me, t = opt.n_trials, opt.curvature_trials, cfg.output.eval_trials, task.n_steps
    if opt.name == "hf":
        vectors = 12 + _saved_iterates(opt.hf.cg_max_iters, opt.hf.cg_backtrack_gamma)
    else:
        vectors = 8
    per_step = n_in + n_out + 5 + (n if task.noise_source == "array" and task.noise_std > 0 else 0)
    scratch = {"numpy": 3 * m * t * n, "numba": (m + mc) * t * (n + n_out),
               "c": threads * t * 2 * (n + n_out)}[backend]
    values = {"parameters": cfg.layout.size * vectors, "trials": (m + me) * t * per_step,
              "forward state": mc * t * (n + n_out), "scratch": scratch}
    return {part: v * _BYTES for part, v in values.items()}


def machine_memory():
    """``(bytes, what)``: the memory this process may use: physical memory, or a smaller cgroup limit."""
    total, what = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "physical memory"
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            limit = fh.read().strip()
    except OSError:
        limit = "max"
    if limit.isdigit() and int(limit) < total:
        total, what = int(limit), "the cgroup's memory.max"
    return total, what


def _size(nbytes):
    """``nbytes`` in the largest binary unit that keeps it >= 1, e.g. ``'7.28 TiB'``."""
    value, unit = float(nbytes), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if value < 1024 or unit == "EiB":
            break
        value /= 1024
    return f"{value:.3g} {unit}"


def check_run_memory(cfg, backend, threads):
    """Refuse a run whose arrays (:func:`run_memory`) exceed the machine's memory (:func:`machine_memory`).

    Raises
    ------
    ValueError
        The estimate, by part, and the machine's memory, with the settings to reduce.
    """
    parts = run_memory(cfg, backend, threads)
    need = sum(parts.values())
    have, what = machine_memory()
    if need > have:
        detail = ", ".join(f"{part} {_size(b)}" for part, b in parts.items())
        raise ValueError(f"the run needs at least {_size(need)} of memory ({detail}; backend {backend}), "
                         f"more than this machine's {_size(have)} ({what}); reduce "
                         "n_units, n_trials, n_steps, curvature_trials or eval_trials")
