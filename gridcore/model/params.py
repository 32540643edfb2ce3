"""``Params``: the network's parameters in one flat float64 buffer with named block views,
their initialisation and their ``.npz`` files (which record the model spec)."""

import numpy as np

from gridcore.model.layout import ParamLayout
from gridcore.model.spec import PAPER, ModelSpec, check_spec
from gridcore.util.checks import as_float_array, check_choice, check_positive_int
from gridcore.util.fileio import atomic_savez, load_npz

REC_INITS = ("orthogonal", "gaussian", "uniform")
GAUSSIAN_REC_GAIN = 1.5  # paper Sec. 2.3: Wrec ~ N(0, 1.5^2 / N) in the hexagon
FILE_FORMAT = 2          # 2: the model spec is stored (key "spec"); 1: no spec (read as any spec)
FILE_FORMATS = (1, 2)    # the formats load() reads; a file without the key is format 1


def param_count(n_units, n_in, n_out, n_code=0):
    """Length of the flat parameter vector: N*N + N*Nin + N + Nout*N + N*Nc."""
    return ParamLayout(n_units, n_in, n_out, n_code).size


class Params:
    """Network parameters held in one flat float64 buffer, with read-only block views.

    The blocks and their order are those of :class:`ParamLayout`
    (``params.layout``): ``Wrec`` (N, N), ``Win`` (N, Nin), ``b`` (N,),
    ``Wout`` (Nout, N) and, for the ``"encoded"`` initial state only, ``Wenc``
    (N, Nc). ``Wrec[i, j]`` is the weight from unit j to unit i.
    Build a new ``Params`` to change them.

    Parameters
    ----------
    Wrec : array_like, (N, N)
    Win : array_like, (N, Nin)
    b : array_like, (N,)
    Wout : array_like, (Nout, N)
    Wenc : array_like, (N, Nc), or None (no such block)
    """

    __slots__ = ("_flat", "layout", "_views")

    def __init__(self, Wrec, Win, b, Wout, Wenc=None):
        Wrec = as_float_array("Wrec", Wrec, (None, None))
        n = Wrec.shape[0]
        if Wrec.shape != (n, n):
            raise ValueError(f"Wrec must be square (N, N), got {Wrec.shape}")
        Win = as_float_array("Win", Win, (n, None))
        b = as_float_array("b", b, (n,))
        Wout = as_float_array("Wout", Wout, (None, n))
        blocks = {"Wrec": Wrec, "Win": Win, "b": b, "Wout": Wout}
        if Wenc is not None:
            blocks["Wenc"] = as_float_array("Wenc", Wenc, (n, None))
            if blocks["Wenc"].shape[1] == 0:
                raise ValueError("Wenc must have at least one column (or be None), got shape (N, 0)")
        layout = ParamLayout(n, Win.shape[1], Wout.shape[0], 0 if Wenc is None else blocks["Wenc"].shape[1])
        self._set_flat(layout.pack(blocks), layout)

    def _set_flat(self, flat, layout):
        flat.flags.writeable = False
        self._flat = flat
        self.layout = layout
        self._views = layout.views(flat)

    def __getattr__(self, name):
        # Block views by name (params.Wrec, ...); only reached for names that are not slots.
        try:
            return object.__getattribute__(self, "_views")[name]
        except (KeyError, AttributeError):
            raise AttributeError(f"Params has no block or attribute {name!r}") from None

    @classmethod
    def from_flat(cls, vec, n_units, n_in, n_out, n_code=0):
        """Build from a flat vector of length ``param_count(n_units, n_in, n_out, n_code)`` (copied)."""
        layout = ParamLayout(n_units, n_in, n_out, n_code)
        flat = as_float_array("vec", vec, (layout.size,)).copy()
        self = cls.__new__(cls)
        self._set_flat(flat, layout)
        return self

    @property
    def flat(self):
        """The read-only flat parameter vector, shape ``(P,)``."""
        return self._flat

    @property
    def shape(self):
        """``(n_units, n_in, n_out)``."""
        return self.layout.shape

    n_units = property(lambda self: self.layout.n_units, doc="N, number of recurrent units")
    n_in = property(lambda self: self.layout.n_in, doc="Nin, number of inputs")
    n_out = property(lambda self: self.layout.n_out, doc="Nout, number of outputs")
    n_code = property(lambda self: self.layout.n_code, doc="Nc, columns of Wenc (0: no Wenc block)")

    def with_flat(self, vec):
        """A new ``Params`` of the same layout holding ``vec``."""
        return Params.from_flat(vec, *self.shape, self.n_code)

    def check_spec(self, spec):
        """Raise ValueError unless these parameters fit ``spec`` (its outputs and its Wenc block)."""
        check_spec(spec)
        if self.n_out != spec.n_out:
            raise ValueError(f"params have n_out = {self.n_out} outputs but the spec's readout "
                             f"{spec.readout!r} has {spec.n_out}")
        if self.n_code != spec.n_code:
            raise ValueError(f"params have a Wenc block of {self.n_code} columns but the spec's initial_state "
                             f"{spec.initial_state!r} with n_place_cells = {spec.n_place_cells} needs "
                             f"{spec.n_code}")
        return spec

    def __repr__(self):
        n, n_in, n_out = self.shape
        code = f", n_code={self.n_code}" if self.n_code else ""
        return f"Params(n_units={n}, n_in={n_in}, n_out={n_out}{code})"

    def __eq__(self, other):
        return (isinstance(other, Params) and self.layout == other.layout
                and np.array_equal(self._flat, other._flat))

    __hash__ = None

    def save(self, path, spec=PAPER):
        """Write to ``path`` (``.npz``) atomically, with the model ``spec`` they belong to."""
        self.check_spec(spec)
        atomic_savez(path, format=FILE_FORMAT, spec=np.array(spec.to_json()),
                     **{name: view for name, view in self._views.items()})

    @classmethod
    def load(cls, path, spec=None, n_units=None, n_in=None, n_out=None):
        """Read a file written by :meth:`save`.

        If ``spec`` is given, a file saved under another spec is refused (a
        file of format 1, which records none, is accepted if it fits the
        spec's outputs). If any of ``n_units``, ``n_in``, ``n_out`` is given,
        a file of another shape is refused. Missing or extra keys,
        inconsistent shapes and non-finite values raise ValueError naming
        the file.
        """
        params, saved = cls.load_with_spec(path)
        if spec is not None:
            if saved is not None:
                check_spec(spec).require_same(saved, f"{path}")
            try:
                params.check_spec(spec)
            except ValueError as err:
                raise ValueError(f"{path}: {err}") from None
        want = (n_units, n_in, n_out)
        if any(w is not None and w != g for w, g in zip(want, params.shape)):
            raise ValueError(f"{path}: parameters have (n_units, n_in, n_out) = {params.shape}, "
                             f"expected {tuple('any' if w is None else w for w in want)}")
        return params

    @classmethod
    def load_with_spec(cls, path):
        """``(params, spec)`` from a parameter file; ``spec`` is None for a format-1 file."""
        names = ParamLayout(1, 1, 1).names
        data = load_npz(path, required=names, optional=("format", "spec", "Wenc"))
        fmt = data.get("format", np.array(1))
        if fmt.shape != () or fmt.dtype.kind not in "iu" or int(fmt) not in FILE_FORMATS:
            raise ValueError(f"{path}: field 'format' = {fmt.tolist()!r} is not a parameter file format this "
                             f"version reads; allowed: {', '.join(map(str, FILE_FORMATS))}")
        if int(fmt) == 2 and "spec" not in data:
            raise ValueError(f"{path}: a format-2 parameter file must hold the model spec (key 'spec')")
        try:
            params = cls(*(data[k] for k in names), Wenc=data.get("Wenc"))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: not a valid parameter file: {err}") from None
        spec = None
        if "spec" in data:
            spec = ModelSpec.from_json(str(data["spec"]), where=f"{path}: spec")
            try:
                params.check_spec(spec)
            except ValueError as err:
                raise ValueError(f"{path}: {err}") from None
        return params, spec


def init_params(n_units, n_in, seed, rec_init="orthogonal", spec=PAPER):
    """The paper's initialisation (Sec. 2.3) of a network under ``spec``.

    ``Wrec`` orthogonal (square and triangle arenas) or Gaussian with variance
    ``1.5**2 / N`` (hexagon), or uniform on ``(-1/sqrt(N), 1/sqrt(N))``
    (PyTorch's ``nn.RNN`` default, as in Sorscher et al.'s code; spectral
    radius about ``1/sqrt(3)``); ``Win ~ N(0, 1/Nin)``; ``b = 0``; ``Wout = 0``;
    under the ``"encoded"`` initial state ``Wenc ~ N(0, 1/Nc)`` (drawn last,
    so the other blocks do not depend on the spec).

    Parameters
    ----------
    n_units, n_in : int
        N and Nin; Nout is ``spec.n_out``.
    seed : int or numpy.random.Generator
    rec_init : {"orthogonal", "gaussian", "uniform"}
    spec : ModelSpec
    """
    n, n_in = (check_positive_int(k, v) for k, v in (("n_units", n_units), ("n_in", n_in)))
    check_choice("rec_init", rec_init, REC_INITS)
    n_out = check_spec(spec).n_out
    rng = np.random.default_rng(seed)
    if rec_init == "orthogonal":
        q, r = np.linalg.qr(rng.standard_normal((n, n)))
        Wrec = q * np.sign(np.diag(r))  # sign fix makes Q Haar-distributed
    elif rec_init == "gaussian":
        Wrec = rng.standard_normal((n, n)) * (GAUSSIAN_REC_GAIN / np.sqrt(n))
    else:
        Wrec = rng.uniform(-1.0, 1.0, (n, n)) / np.sqrt(n)
    Win = rng.standard_normal((n, n_in)) / np.sqrt(n_in)
    n_code = spec.n_code
    Wenc = rng.standard_normal((n, n_code)) / np.sqrt(n_code) if n_code else None
    return Params(Wrec, Win, np.zeros(n), np.zeros((n_out, n)), Wenc)
