"""The backends layer: one registry of compute cores, ``get_backend("numpy" | "numba" | "c" | "auto")``.

Every backend subclasses :class:`gridcore.backends.base.Backend`, so tests,
benchmarks and the optimiser are written once against this interface:

- ``forward(params, inputs, noise=None, x0=None, spec=PAPER)`` -> ForwardState
- ``loss(params, batch, reg, spec=PAPER)`` -> dict of loss terms
- ``gradient(params, batch, reg, spec=PAPER, sq_grad=False)`` -> (terms, grad[, sq])
- ``gn_product(params, batch, state, v, reg, mu=0.0, spec=PAPER)`` -> G v
- ``forward_stream(params, inputs, noise=None, x0=None, spec=PAPER, keep_u=False)``
  -> StreamResult

plus the attributes ``name`` and ``threads``. Adding a backend means adding one
entry to ``_LOADERS``. Imports only the model and util layers.
"""

import importlib
import logging

from threadpoolctl import threadpool_limits

from gridcore.util.checks import check_dtype

log = logging.getLogger(__name__)


def blas_threads(backend):
    """NumPy's BLAS threads while ``backend`` does a long job (training); None: BLAS's own choice.

    The reference's parallelism is BLAS, so its ``threads`` caps BLAS. The
    C and Numba cores run their own threads, and BLAS is left only the
    optimiser's vector dot products (length P ~ 10^4). OpenBLAS splits a dot
    product that long over its threads, and then its idle workers spin on
    the cores the kernels need. That made a paper-size HF iteration 1.6x
    slower (6.0 s against 3.7 s with the C core on 2 threads), and the dot
    products' round-off depended on the BLAS thread count. So for those
    cores BLAS gets one thread.
    """
    return backend.threads if backend.name == "numpy" else 1


def blas_limits(backend):
    """Context manager capping NumPy's BLAS at :func:`blas_threads` (threadpoolctl)."""
    return threadpool_limits(limits=blas_threads(backend), user_api="blas")


# name -> (module, class, how to get it when it is missing)
_LOADERS = {
    "numpy": ("gridcore.backends.reference", "ReferenceBackend", None),
    "numba": ("gridcore.backends.numba.backend", "NumbaBackend", "install numba: pip install numba"),
    "c": ("gridcore.backends.c.backend", "CBackend",
          "install gridcore with a C compiler present: pip install -e . in the source tree "
          "(a plain `pip install .` builds the C core into site-packages only, and "
          "`python -m gridcore...` run from the source tree imports the unbuilt copy there)"),
}
BACKEND_NAMES = tuple(_LOADERS)
_AUTO_ORDER = ("c", "numba", "numpy")


def _load(name):
    module, cls, _ = _LOADERS[name]
    return getattr(importlib.import_module(module), cls)


def _load_error(name):
    """The ImportError that keeps backend ``name`` from loading, or None if it loads."""
    try:
        _load(name)
    except ImportError as err:
        return err
    return None


def available_backends():
    """Names of the backends that load on this installation, fastest first."""
    return [name for name in _AUTO_ORDER if _load_error(name) is None]


def get_backend(name="auto", threads=None, dtype="float64"):
    """Return a backend object by name.

    Parameters
    ----------
    name : {"auto", "numpy", "numba", "c"}
        ``"auto"`` picks C when it is built, else Numba, else NumPy, and logs its choice.
    threads : int or None
        Threads for the fast backends (None: all cores). Results are bit-identical
        for a fixed thread count.
    dtype : {"float64", "float32"}
        Element type the kernels compute in: float32 is for the "c" and
        "numba" cores (the NumPy reference refuses it). Parameters and
        gradients stay float64 either way.
    """
    dtype = check_dtype(dtype)
    if name == "auto":
        for name in _AUTO_ORDER:
            err = _load_error(name)
            if err is None:
                break
            # Say why a faster backend was passed over: it is slower, not wrong.
            log.warning("backend %r is not available (%s); to get it, %s",
                        name, err, _LOADERS[name][2])
        log.info("backend 'auto' picked %r", name)
    if name not in _LOADERS:
        raise ValueError(f"unknown backend {name!r}; allowed: 'auto', "
                         + ", ".join(repr(n) for n in BACKEND_NAMES)
                         + f" (available here: {', '.join(available_backends())})")
    try:
        cls = _load(name)
    except ImportError as err:
        raise ImportError(f"backend {name!r} is not available ({err}); to get it, "
                          f"{_LOADERS[name][2]}") from err
    return cls(threads=threads, dtype=dtype)
