"""``ParamLayout``: the blocks of the flat parameter vector, in one place.

Every core reads the parameters through this layout: the NumPy reference and
the Numba wrappers by block name, the C core through the same order, coded
once in ``grc_param_layout`` (``csrc/gridcore.c``) and checked against this
class by the tests. The order (``docs/math.md`` section 0)::

    theta = [Wrec (N, N), Win (N, Nin), b (N,), Wout (Nout, N), Wenc (N, Nc)]

each block row-major; ``Wrec[i, j]`` is the weight from unit j to unit i.
``Wenc`` maps a start position's place-cell code to ``x_0``; it exists only
under the ``"encoded"`` initial state (``Nc = ModelSpec.n_code >= 1``).
"""

from dataclasses import dataclass

import numpy as np

from gridcore.util.checks import check_nonneg_int, check_positive_int


@dataclass(frozen=True)
class Block:
    """One named block of the flat vector: ``theta[offset:offset + size].reshape(shape)``."""

    name: str
    shape: tuple
    offset: int

    @property
    def size(self):
        """Number of entries of the block."""
        return int(np.prod(self.shape))

    @property
    def stop(self):
        """Offset one past the block's last entry."""
        return self.offset + self.size


class ParamLayout:
    """Names, shapes and offsets of the parameter blocks of one network size.

    Parameters
    ----------
    n_units, n_in, n_out : int >= 1
        N, Nin and Nout.
    n_code : int >= 0
        Nc, columns of the ``Wenc`` block; 0 (the default) means no such block.
    """

    __slots__ = ("n_units", "n_in", "n_out", "n_code", "blocks", "_by_name")

    def __init__(self, n_units, n_in, n_out, n_code=0):
        n, n_in, n_out = (check_positive_int(k, v) for k, v in
                          (("n_units", n_units), ("n_in", n_in), ("n_out", n_out)))
        n_code = check_nonneg_int("n_code", n_code)
        self.n_units, self.n_in, self.n_out, self.n_code = n, n_in, n_out, n_code
        shapes = [("Wrec", (n, n)), ("Win", (n, n_in)), ("b", (n,)), ("Wout", (n_out, n))]
        if n_code:
            shapes.append(("Wenc", (n, n_code)))
        blocks, offset = [], 0
        for name, shape in shapes:
            blocks.append(Block(name, shape, offset))
            offset += blocks[-1].size
        self.blocks = tuple(blocks)
        self._by_name = {b.name: b for b in blocks}

    @classmethod
    def for_spec(cls, spec, n_units, n_in):
        """The layout of a network of ``n_units`` units and ``n_in`` inputs under ``spec``."""
        return cls(n_units, n_in, spec.n_out, spec.n_code)

    @property
    def names(self):
        """Block names in flat order."""
        return tuple(b.name for b in self.blocks)

    @property
    def size(self):
        """P, the length of the flat vector."""
        return self.blocks[-1].stop

    @property
    def shape(self):
        """``(n_units, n_in, n_out)``."""
        return self.n_units, self.n_in, self.n_out

    def __getitem__(self, name):
        return self._by_name[name]

    def views(self, flat):
        """Dict of block name -> view of ``flat`` (P,) with the block's shape."""
        return {b.name: flat[b.offset:b.stop].reshape(b.shape) for b in self.blocks}

    def pack(self, blocks):
        """Flat (P,) float64 vector from a dict of every block (arrays of the blocks' shapes)."""
        missing = [n for n in self.names if n not in blocks]
        if missing:
            raise ValueError(f"blocks missing from the parameters: {missing}")
        return np.concatenate([np.asarray(blocks[b.name], dtype=np.float64).reshape(b.size)
                               for b in self.blocks])

    def fill(self, values):
        """Flat (P,) vector holding the scalar ``values[name]`` over each named block, 0 elsewhere."""
        out = np.zeros(self.size)
        for name, value in values.items():
            b = self[name]
            out[b.offset:b.stop] = value
        return out

    def __eq__(self, other):
        return isinstance(other, ParamLayout) and (self.shape, self.n_code) == (other.shape, other.n_code)

    def __hash__(self):
        return hash((self.shape, self.n_code))

    def __repr__(self):
        return "ParamLayout(" + ", ".join(f"{b.name}{b.shape}@{b.offset}" for b in self.blocks) + ")"
