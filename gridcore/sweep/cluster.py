"""The Dask side of a sweep: a LocalCluster of the right shape, or an existing scheduler, and threads per run.

On one machine the sweep starts a ``LocalCluster`` of one process per worker,
each running one run at a time (one Dask thread), and gives every run's
kernels ``threads`` threads so that workers x threads = the usable cores.
On an existing cluster the threads per run come from the workers found: the
usable cores of each host over the Dask threads on it (the smallest over the
hosts), unless given.
"""

import os

__all__ = ["usable_cores", "local_shape", "start_local_cluster", "connect", "cluster_threads", "import_dask"]


def import_dask():
    """``dask`` and ``distributed``, or ImportError saying how to install them."""
    try:
        import dask
        import distributed
    except ImportError:
        raise ImportError("sweeps run on Dask: pip install 'gridcore[sweep]' (or pip install 'dask[distributed]'); "
                          "--serial runs the points one after another without it") from None
    return dask, distributed


def usable_cores():
    """CPU cores this process may run on (its affinity mask: a batch job's allocation)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def local_shape(n_runs, workers=None, threads=None, cores=None):
    """``(workers, threads)`` of a LocalCluster for a sweep of ``n_runs`` runs.

    Given neither, ``min(cores, n_runs)`` workers share the cores; given one,
    the other fills the cores; given both, both are kept. The shape depends
    on the sweep's size, not on how many runs remain, so a resumed sweep
    gives its runs the same thread count (and so the same bits).

    Parameters
    ----------
    n_runs : int >= 1
    workers, threads : int >= 1 or None
    cores : int or None
        Default: :func:`usable_cores`.
    """
    cores = usable_cores() if cores is None else cores
    if workers is None:
        workers = max(1, min(cores // (threads or 1), n_runs))
    if threads is None:
        threads = max(1, cores // workers)
    return workers, threads


def start_local_cluster(workers, threads, dashboard=None):
    """A ``Client`` of a new LocalCluster: ``workers`` processes of one Dask thread each.

    Each worker process starts with the BLAS/OpenMP thread variables at
    ``threads`` (Dask sets them to 1) and ignores SIGINT
    (:func:`gridcore.sweep.worker.dask_setup`), so that Ctrl-C reaches the
    client only and the runs are stopped with a checkpoint.

    Parameters
    ----------
    workers, threads : int >= 1
    dashboard : str or None
        Address of Dask's dashboard (e.g. ``":8787"``, needs bokeh); None: none.
    """
    dask, distributed = import_dask()
    key = "distributed.nanny.pre-spawn-environ"
    env = {**dask.config.get(key, {}), **dict.fromkeys(("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                         "OPENBLAS_NUM_THREADS"), threads)}
    # The nannies read the variables when made, and use them again when they restart a dead worker.
    # Saturation 1: a worker holds only the task it runs (the others wait at the scheduler, free to
    # go to whichever worker frees first, and the progress line's "running" is exact).
    with dask.config.set({key: env, "distributed.scheduler.worker-saturation": 1.0}):
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           dashboard_address=dashboard, preload=["gridcore.sweep.worker"])
    return distributed.Client(cluster)


def connect(address, timeout=60):
    """A ``Client`` of the Dask scheduler at ``address`` (e.g. ``tcp://10.0.0.5:8786``; ``timeout`` in s)."""
    _, distributed = import_dask()
    return distributed.Client(address, timeout=timeout)


def cluster_threads(client):
    """Kernel threads per run on ``client``'s workers: the least over hosts of cores / Dask threads there.

    Waits for a first worker (a batch queue may take a while to start one).
    """
    client.wait_for_workers(1)
    cores = client.run(usable_cores)
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"]
    except TypeError:  # distributed before 2025 lists every worker without being asked
        workers = client.scheduler_info()["workers"]
    per_host = {}
    for address, info in workers.items():
        host = per_host.setdefault(info["host"], [0, 0])
        host[0] = max(host[0], cores.get(address, 1))
        host[1] += info["nthreads"]
    return max(1, min(c // n for c, n in per_host.values()))
