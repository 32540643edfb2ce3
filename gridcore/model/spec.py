"""``ModelSpec``: what network is trained, in one frozen, validated object.

The paper's model (SPEC section 2, ``docs/math.md`` section 1)::

    x_{t+1} = (1 - alpha) x_t + alpha (Wrec u_t + Win I_t + b + xi_t),  u_t = phi(x_t)
    y_t     = Wout u_t,                                                  x_0 = 0

with ``phi = tanh``, ``alpha = dt / tau = 0.1`` and the squared error of the
x, y readout. Every backend takes the spec (``spec=``), every run directory
and parameter file records it, and loading parameters under another spec is
refused. A new model variant is a new allowed value here plus its branch in
each language's nonlinearity or readout helper (``docs/math.md`` section 6).
"""

import json
from dataclasses import asdict, dataclass, fields

from gridcore.util.checks import check_choice, check_nonneg_int

ALPHA = 0.1  # dt / tau: Euler step as a fraction of the unit time constant (paper: dt = tau/10)

# name -> integer code shared with the Numba and C kernels (csrc/gridcore.h GRC_PHI_*)
NONLINEARITIES = {"tanh": 0, "relu": 1}
# "xy": linear readout of the position, squared error (2 outputs); "place-cells": logits over
# n_place_cells cells, softmax cross-entropy (docs/math.md section 7)
READOUTS = ("xy", "place-cells")
# "zero": x_0 = 0; "encoded": x_0 = Wenc c, c the place-cell code of the trial's start
INITIAL_STATES = ("zero", "encoded")


@dataclass(frozen=True)
class ModelSpec:
    """A CTRNN model variant.

    Parameters
    ----------
    alpha : float in (0, 1]
        ``dt / tau``, the Euler step as a fraction of the unit time constant.
    nonlinearity : {"tanh", "relu"}
        ``phi``, the rate function ``u = phi(x)``; ``"relu"`` is ``max(x, 0)``
        (non-negative rates).
    readout : {"xy", "place-cells"}
        What the outputs report and the error that trains them: ``"xy"``, a
        linear readout of the x, y position with squared error (2 outputs);
        ``"place-cells"``, logits over ``n_place_cells`` place cells trained
        by softmax cross-entropy against the cells' code of the position.
    initial_state : {"zero", "encoded"}
        ``x_0`` of every trial: ``"zero"`` is ``x_0 = 0``; ``"encoded"`` is
        ``x_0 = Wenc c``, with ``c`` the place-cell code of the trial's start
        position (``Batch.start_codes``) and ``Wenc`` (N, n_place_cells) learned.
    n_place_cells : int >= 0
        Np, the size of the place-cell code: required (>= 1) by the
        ``"place-cells"`` readout and the ``"encoded"`` initial state, 0 otherwise.
    """

    alpha: float = ALPHA
    nonlinearity: str = "tanh"
    readout: str = "xy"
    initial_state: str = "zero"
    n_place_cells: int = 0

    def __post_init__(self):
        try:
            alpha = float(self.alpha)
        except (TypeError, ValueError):
            raise TypeError(f"alpha must be a real number, got {self.alpha!r}") from None
        if not 0.0 < alpha <= 1.0:  # also rejects NaN
            raise ValueError(f"alpha (dt/tau) must be in (0, 1], got {self.alpha!r}")
        object.__setattr__(self, "alpha", alpha)
        check_choice("nonlinearity", self.nonlinearity, tuple(NONLINEARITIES))
        check_choice("readout", self.readout, READOUTS)
        check_choice("initial_state", self.initial_state, INITIAL_STATES)
        n_pc = check_nonneg_int("n_place_cells", self.n_place_cells)
        object.__setattr__(self, "n_place_cells", n_pc)
        if self.uses_place_cells and n_pc < 1:
            raise ValueError(f"n_place_cells must be >= 1 for readout {self.readout!r} and initial_state "
                             f"{self.initial_state!r} (they use a place-cell code), got {n_pc}")
        if not self.uses_place_cells and n_pc != 0:
            raise ValueError(f"n_place_cells must be 0 unless readout is 'place-cells' or initial_state is "
                             f"'encoded' (nothing else uses place cells), got {n_pc}")

    @property
    def uses_place_cells(self):
        """True if the readout or the initial state uses a place-cell code."""
        return self.readout == "place-cells" or self.initial_state == "encoded"

    @property
    def n_out(self):
        """Number of outputs the readout has: 2 for ``"xy"``, ``n_place_cells`` for ``"place-cells"``."""
        return 2 if self.readout == "xy" else self.n_place_cells

    @property
    def n_code(self):
        """Nc, columns of the ``Wenc`` block: ``n_place_cells`` if the initial state is encoded, else 0."""
        return self.n_place_cells if self.initial_state == "encoded" else 0

    @property
    def phi_code(self):
        """Integer code of the nonlinearity for the compiled kernels."""
        return NONLINEARITIES[self.nonlinearity]

    def to_dict(self):
        """Plain dict of the fields (JSON-ready)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d, where="spec"):
        """Build from a dict as :meth:`to_dict` writes it; unknown keys raise ValueError naming ``where``."""
        if not isinstance(d, dict):
            raise TypeError(f"{where} must be a dict of ModelSpec fields, got {type(d).__name__}")
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(allowed))
        if unknown:
            raise ValueError(f"{where}: unknown model settings {unknown}; allowed: {', '.join(allowed)}")
        return cls(**d)

    def to_json(self):
        """The spec as a compact JSON string (stored inside parameter files)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text, where="spec"):
        """Inverse of :meth:`to_json`; malformed text raises ValueError naming ``where``."""
        try:
            d = json.loads(text)
        except (TypeError, json.JSONDecodeError) as err:
            raise ValueError(f"{where}: unreadable model spec ({err})") from None
        return cls.from_dict(d, where)

    def require_same(self, other, what):
        """Raise ValueError unless ``other`` equals this spec, naming ``what`` and each difference."""
        if other != self:
            diff = ", ".join(f"{f.name} {getattr(other, f.name)!r} (expected {getattr(self, f.name)!r})"
                             for f in fields(self) if getattr(other, f.name) != getattr(self, f.name))
            raise ValueError(f"{what} has another model spec: {diff}")


PAPER = ModelSpec()  # Cueva & Wei's model: the default everywhere


def check_spec(spec):
    """Return ``spec``, raising TypeError unless it is a :class:`ModelSpec`."""
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a gridcore.ModelSpec, got {type(spec).__name__}")
    return spec
