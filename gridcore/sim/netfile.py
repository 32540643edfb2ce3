"""Exported networks: a trained network and what drives and decodes it, in one small
binary file a C program reads without Python (``grc_net_load``, ``csrc/grc_net.c``).

Format version 1 (``docs/c_api.md``, "Exported networks"), little-endian, no
padding: a 128-byte header, then float64 arrays::

    offset  type      field
    0       8 bytes   magic b"GRCNET\\r\\n"
    8       uint32    format version (1)
    12      uint32    header bytes (128)
    16      int64     N, Nin, Nout, Nc, Np (place cells, 0 without), decoder k (0 without)
    64      int32     nonlinearity, readout, initial state (GRC_PHI_*, GRC_READOUT_*, GRC_X0_*),
                      encoding (GRC_ENC_*), arena (GRC_ARENA_*), surround (0 or 1)
    88      float64   alpha, arena size, place-cell sigma, surround scale (0 without place cells)
    120     int64     P, the length of theta
    128     float64   theta [P] (the order of grc_param_layout / ParamLayout)
            float64   centres [Np, 2] (arena units)

and nothing after. Inputs are the run's encoding of (speed in arena units
per step, heading in radians); the arena is centred on the origin with area
``arena_size**2``. Decoding place-cell outputs: the mean centre of the
``decoder_k`` cells with the largest outputs (:meth:`PlaceCells.decode`).
"""

import struct
from dataclasses import dataclass

import numpy as np

from gridcore.model.params import Params
from gridcore.model.spec import INITIAL_STATES, NONLINEARITIES, READOUTS, ModelSpec
from gridcore.sim.arenas import WALLED_ARENA_NAMES, make_arena
from gridcore.sim.placecells import PlaceCells
from gridcore.sim.trajectories import ENCODINGS
from gridcore.util.checks import check_choice

__all__ = ["MAGIC", "FORMAT_VERSION", "DECODER_K", "Network", "write_network", "read_network"]

MAGIC = b"GRCNET\r\n"   # \r\n: a text-mode transfer that rewrites line ends breaks it visibly
FORMAT_VERSION = 1
DECODER_K = 3           # PlaceCells.decode's default: Sorscher et al.'s 3 most active cells
_HEAD = struct.Struct("<8sII6q6i4dq")
# codes written out, as in csrc/gridcore.h (GRC_ENC_*, GRC_ARENA_*); the tests check them against the header
ENCODING_CODES = {name: i for i, name in enumerate(ENCODINGS)}
# The torus has no code: the C core's decoder takes plain, not circular, means.
ARENA_CODES = {name: i for i, name in enumerate(WALLED_ARENA_NAMES)}


@dataclass(frozen=True, eq=False)
class Network:
    """An exported network, as :func:`read_network` returns it.

    Attributes
    ----------
    params : Params
    spec : ModelSpec
    encoding : str
        Key of :data:`gridcore.sim.trajectories.ENCODINGS`: the inputs.
    arena : str
        Name of the arena (:data:`gridcore.sim.arenas.WALLED_ARENA_NAMES`).
    arena_size : float
        Side of the arena's equal-area square (arena units).
    place_cells : PlaceCells or None
        The run's place cells (centres and tuning), None when the model uses none.
    decoder_k : int
        Cells averaged when place-cell outputs are decoded (0 without place cells).
    """

    params: Params
    spec: ModelSpec
    encoding: str
    arena: str
    arena_size: float
    place_cells: PlaceCells
    decoder_k: int


def write_network(path, params, spec, encoding, arena, arena_size, place_cells=None, decoder_k=DECODER_K):
    """Write a network in format :data:`FORMAT_VERSION` (see the module doc).

    Parameters
    ----------
    path : str or path-like
    params : Params
        Finite parameters of ``spec``.
    spec : ModelSpec
    encoding : str
        The run's input encoding.
    arena : str
        The run's arena name; ``arena_size`` its size (arena units).
    place_cells : PlaceCells or None
        Required (with ``spec.n_place_cells`` cells) when the spec uses place cells.
    decoder_k : int
        Cells averaged by the place-cell decoder.
    """
    params.check_spec(spec)
    check_choice("encoding", encoding, tuple(ENCODINGS))
    if arena == "torus":
        raise ValueError("arena 'torus' cannot be exported: the C core decodes place cells with plain means, "
                         f"not periodic ones; exportable arenas: {', '.join(ARENA_CODES)}")
    check_choice("arena", arena, tuple(ARENA_CODES))
    make_arena(arena, arena_size)                    # checks the size
    if params.n_in != ENCODINGS[encoding]:
        raise ValueError(f"encoding {encoding!r} has {ENCODINGS[encoding]} inputs but the network has "
                         f"n_in = {params.n_in}")
    n_pc, k, sigma, surround, scale = 0, 0, 0.0, 0, 0.0
    centres = np.zeros((0, 2))
    if spec.uses_place_cells:
        if not isinstance(place_cells, PlaceCells) or place_cells.n_cells != spec.n_place_cells:
            raise ValueError(f"the spec uses {spec.n_place_cells} place cells: pass the run's PlaceCells, "
                             f"got {place_cells!r}")
        n_pc, centres = place_cells.n_cells, place_cells.centres
        if isinstance(decoder_k, bool) or not isinstance(decoder_k, int) or not 1 <= decoder_k <= n_pc:
            raise ValueError(f"decoder_k must be an integer in [1, {n_pc}], got {decoder_k!r}")
        k, sigma, surround, scale = decoder_k, place_cells.sigma, int(place_cells.surround), \
            place_cells.surround_scale
    n, n_in, n_out = params.shape
    head = _HEAD.pack(MAGIC, FORMAT_VERSION, _HEAD.size, n, n_in, n_out, params.n_code, n_pc, k,
                      NONLINEARITIES[spec.nonlinearity], READOUTS.index(spec.readout),
                      INITIAL_STATES.index(spec.initial_state), ENCODING_CODES[encoding], ARENA_CODES[arena],
                      surround, spec.alpha, float(arena_size), sigma, scale, params.flat.size)
    with open(path, "wb") as fh:
        fh.write(head)
        fh.write(params.flat.astype("<f8").tobytes())
        fh.write(np.ascontiguousarray(centres, dtype="<f8").tobytes())


def read_network(path):
    """Read a file of :func:`write_network`; ValueError naming the file if it is not one.

    Returns
    -------
    Network
    """
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) < _HEAD.size or data[:8] != MAGIC:
        raise ValueError(f"{path}: not a gridcore network file (no {MAGIC!r} magic)")
    (_, version, head_bytes, n, n_in, n_out, n_code, n_pc, k, phi, readout, x0, enc, arena, surround,
     alpha, size, sigma, scale, n_theta) = _HEAD.unpack_from(data)
    if version != FORMAT_VERSION or head_bytes != _HEAD.size:
        raise ValueError(f"{path}: network file format {version} (header {head_bytes} bytes); this gridcore "
                         f"reads format {FORMAT_VERSION}")
    if len(data) != _HEAD.size + 8 * (n_theta + 2 * n_pc):
        raise ValueError(f"{path}: {len(data)} bytes, but the header announces "
                         f"{_HEAD.size + 8 * (n_theta + 2 * n_pc)}")
    arrays = np.frombuffer(data, dtype="<f8", offset=_HEAD.size).astype(np.float64)
    try:
        spec = ModelSpec(alpha=alpha, nonlinearity=list(NONLINEARITIES)[phi], readout=READOUTS[readout],
                         initial_state=INITIAL_STATES[x0], n_place_cells=n_pc)
        params = Params.from_flat(arrays[:n_theta], n, n_in, n_out, n_code)
        params.check_spec(spec)
        arena_name = WALLED_ARENA_NAMES[arena]
        cells = None
        if n_pc:
            cells = PlaceCells(make_arena(arena_name, size), sigma=sigma, surround=bool(surround),
                               surround_scale=scale, centres=arrays[n_theta:].reshape(n_pc, 2))
        return Network(params, spec, list(ENCODINGS)[enc], arena_name, size, cells, k)
    except (IndexError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: not a valid gridcore network file: {err}") from None
