"""Exported networks (``python -m gridcore export``): the file format written by
:mod:`gridcore.sim.netfile`, its C loader ``grc_net_load`` (and ``grc_net_decode``,
``grc_net_place_code``), the closed-loop C example against Python, and
``make install`` with a program built against it through pkg-config."""

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from problems import SPECS, random_problem, spec_id

from gridcore import PlaceCells, Stepper
from gridcore.sim import netfile
from gridcore.sim.netfile import read_network, write_network
from gridcore.sim.placecells import outputs_to_positions
from gridcore.sim.stepper import C_MISSING
from gridcore.sim.trajectories import simulate

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
SQUARE = ROOT / "docs" / "results" / "square"        # a trained run shipped with the sources
needs_c = pytest.mark.skipif(bool(C_MISSING), reason=str(C_MISSING))
needs_make = pytest.mark.skipif(shutil.which("make") is None or shutil.which("cc") is None,
                                reason="needs make and cc")


def _network(tmp_path, spec, name="net.grc"):
    """A small random network of ``spec`` written to a file; (path, params, place cells)."""
    params, _, _ = random_problem(n_units=11, spec=spec)
    cells = PlaceCells("square", n_cells=spec.n_place_cells, sigma=0.5, seed=1) if spec.uses_place_cells else None
    path = tmp_path / name
    write_network(path, params, spec, "speed-angle", "square", 2.0, place_cells=cells)
    return path, params, cells


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_round_trip(tmp_path, spec):
    path, params, cells = _network(tmp_path, spec)
    net = read_network(path)
    assert net.params == params and net.spec == spec and net.encoding == "speed-angle"
    assert (net.arena, net.arena_size) == ("square", 2.0)
    if cells is None:
        assert net.place_cells is None and net.decoder_k == 0
    else:
        assert net.place_cells == PlaceCells(cells.arena, sigma=0.5, seed=0, centres=cells.centres)
        assert net.decoder_k == netfile.DECODER_K


def test_writer_refuses_what_does_not_fit(tmp_path):
    params, _, _ = random_problem(n_units=5)
    with pytest.raises(ValueError, match="encoding"):
        write_network(tmp_path / "a", params, SPECS[0], "speed-cos-sin", "square", 2.0)
    pc = SPECS[4]
    assert pc.uses_place_cells
    pc_params, _, _ = random_problem(n_units=5, spec=pc)
    with pytest.raises(ValueError, match="place cells"):
        write_network(tmp_path / "a", pc_params, pc, "speed-angle", "square", 2.0)
    (tmp_path / "b").write_bytes(b"PK\x03\x04 not ours")
    with pytest.raises(ValueError, match="magic"):
        read_network(tmp_path / "b")


# ---- the C loader

def _load(path):
    from gridcore.backends.c.ccore import ffi, lib
    out = ffi.new("grc_net **")
    status = lib.grc_net_load(str(path).encode(), out)
    return status, (ffi.gc(out[0], lib.grc_net_free) if status == 0 else out[0])


@needs_c
def test_header_codes_match_python():
    from gridcore.backends.c.ccore import lib
    assert lib.GRC_NET_FORMAT_VERSION == netfile.FORMAT_VERSION
    assert netfile.ENCODING_CODES == {"speed-angle": lib.GRC_ENC_SPEED_ANGLE,
                                      "speed-cos-sin": lib.GRC_ENC_SPEED_COS_SIN, "velocity": lib.GRC_ENC_VELOCITY}
    assert netfile.ARENA_CODES == {"square": lib.GRC_ARENA_SQUARE, "triangle": lib.GRC_ARENA_TRIANGLE,
                                   "hexagon": lib.GRC_ARENA_HEXAGON, "circle": lib.GRC_ARENA_CIRCLE}


@needs_c
@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_c_loader_reads_what_python_wrote(tmp_path, spec):
    from gridcore.backends.c.ccore import ffi, lib
    path, params, cells = _network(tmp_path, spec)
    status, net = _load(path)
    assert status == lib.GRC_OK
    n, n_in, n_out = params.shape
    assert (net.shape.n_units, net.shape.n_in, net.shape.n_out, net.shape.n_code) == (n, n_in, n_out, params.n_code)
    assert net.model.alpha == spec.alpha and net.encoding == lib.GRC_ENC_SPEED_ANGLE and net.arena_size == 2.0
    assert np.array_equal(np.frombuffer(ffi.buffer(net.theta, 8 * params.flat.size)), params.flat)
    if cells is None:
        assert net.n_place_cells == 0 and net.centres == ffi.NULL
        return
    np.testing.assert_array_equal(np.frombuffer(ffi.buffer(net.centres, 16 * cells.n_cells)).reshape(-1, 2),
                                  cells.centres)
    pos = np.array([[0.1, -0.4], [0.9, 0.9], [-1.0, 0.0]])
    code = np.empty((3, cells.n_cells))
    assert lib.grc_net_place_code(net, 3, ffi.from_buffer("double[]", pos), ffi.from_buffer("double[]", code)) == 0
    np.testing.assert_allclose(code, cells.encode(pos), rtol=0, atol=1e-14)
    if spec.readout == "place-cells":
        y = np.random.default_rng(0).standard_normal((4, n_out))
        got = np.empty((4, 2))
        assert lib.grc_net_decode(net, 4, ffi.from_buffer("double[]", y), ffi.from_buffer("double[]", got)) == 0
        np.testing.assert_allclose(got, cells.decode(y), rtol=0, atol=1e-15)


@needs_c
def test_c_loader_checks(tmp_path):
    from gridcore.backends.c.ccore import lib
    path, params, _ = _network(tmp_path, SPECS[0])
    good = path.read_bytes()

    def status_of(data):
        bad = tmp_path / "bad.grc"
        bad.write_bytes(data)
        return _load(bad)[0]

    def patched(offset, fmt, value):
        data = bytearray(good)
        struct.pack_into(fmt, data, offset, value)
        return bytes(data)

    assert _load(tmp_path / "missing.grc")[0] == lib.GRC_EIO
    assert status_of(b"GRCNET\n\n" + good[8:]) == lib.GRC_EFORMAT                 # magic
    assert status_of(patched(8, "<I", 2)) == lib.GRC_EFORMAT                       # format version
    assert status_of(good[:-8]) == lib.GRC_EFORMAT                                 # truncated
    assert status_of(good[:100]) == lib.GRC_EFORMAT                                # inside the header
    assert status_of(good + b"\0") == lib.GRC_EFORMAT                              # trailing bytes
    assert status_of(patched(120, "<q", params.flat.size + 1)) == lib.GRC_EFORMAT  # P against the layout
    assert status_of(patched(24, "<q", 3)) == lib.GRC_EFORMAT                      # Nin against the encoding
    assert status_of(patched(32, "<q", 3)) == lib.GRC_ESHAPE                       # Nout against the xy readout
    assert status_of(patched(64, "<i", 7)) == lib.GRC_EMODEL                       # nonlinearity code
    assert status_of(patched(88, "<d", 1.5)) == lib.GRC_EALPHA
    assert status_of(patched(128 + 8 * 3, "<d", float("nan"))) == lib.GRC_ENONFINITE
    assert status_of(patched(96, "<d", float("inf"))) == lib.GRC_ENONFINITE       # arena size
    (tmp_path / "short.grc").write_bytes(good[:-8])
    with pytest.raises(ValueError, match="bytes"):
        read_network(tmp_path / "short.grc")


# ---- the CLI

def test_cli_export_of_a_trained_run(tmp_path):
    from gridcore.cli.main import main
    from gridcore.train.rundir import load_run
    out = tmp_path / "square.grc"
    assert main(["export", str(SQUARE), str(out)]) == 0
    run, net = load_run(SQUARE), read_network(out)
    assert net.params == run.params and net.spec == run.spec
    assert (net.encoding, net.arena, net.arena_size) == (run.settings.task.encoding, run.settings.task.arena,
                                                         run.settings.task.arena_size)
    assert main(["export", str(tmp_path / "no-run"), str(out)]) == 1


# ---- C programs: the closed-loop example, make install and pkg-config

@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """The Makefile's build in a temporary BUILD directory."""
    out = tmp_path_factory.mktemp("build")
    subprocess.run(["make", "-s", "-C", str(CSRC), f"BUILD={out}"], check=True, capture_output=True, timeout=600)
    return out


def _closed_loop(build, net_path, lines):
    path = net_path.parent / "path.txt"
    path.write_text("# inputs per step\n" + "\n".join(lines) + "\n")
    proc = subprocess.run([str(build / "examples" / "closed_loop"), str(net_path), str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return np.loadtxt(proc.stdout.splitlines(), ndmin=2)


@needs_make
def test_closed_loop_example_equals_python(build, tmp_path):
    from gridcore.cli.main import main
    net_path = tmp_path / "square.grc"
    assert main(["export", str(SQUARE), str(net_path)]) == 0
    inputs = simulate("square", n_trials=1, n_steps=300, seed=5).inputs[0]
    got = _closed_loop(build, net_path, [" ".join(f"{v:.17g}" for v in row) for row in inputs])
    net = read_network(net_path)
    stepper = Stepper(net.params, net.spec)
    want = [stepper.reset()] + [stepper.step(i) for i in inputs]
    assert np.array_equal(got[:, 0], np.arange(301))
    np.testing.assert_allclose(got[:, 1:], want, rtol=0, atol=1e-10)


@needs_make
def test_closed_loop_example_place_cells_from_a_start(build, tmp_path):
    spec = next(s for s in SPECS if s.readout == "place-cells" and s.initial_state == "encoded")
    net_path, params, cells = _network(tmp_path, spec)
    inputs = simulate("square", n_trials=1, n_steps=40, seed=6).inputs[0]
    start = [0.3, -0.2]
    got = _closed_loop(build, net_path, [f"start {start[0]!r} {start[1]!r}"]
                       + [" ".join(f"{v:.17g}" for v in row) for row in inputs])
    stepper = Stepper(params, spec, place_cells=cells)
    want = [stepper.reset(start=start)] + [stepper.step(i) for i in inputs]
    np.testing.assert_allclose(got[:, 1:], outputs_to_positions(np.array(want), spec, cells), rtol=0, atol=1e-10)


PROGRAM = r"""
#include <stdio.h>
#include <gridcore.h>
int main(int argc, char **argv)
{
    grc_net *net = NULL;
    grc_stepper *st = NULL;
    if (grc_abi_version() != GRC_ABI_VERSION || argc != 2 || grc_net_load(argv[1], &net))
        return 1;
    double x[100], u[100], y[2], in[2] = {0.05, 0.3};
    if (grc_stepper_create(net->shape, net->model, net->theta, 1, GRC_ISA_AUTO, &st)
        || grc_stepper_start(st, 1, NULL, x, u, y) || grc_step(st, 1, in, (grc_noise){0}, x, u, y))
        return 1;
    printf("%.17g %.17g\n", y[0], y[1]);
    grc_stepper_destroy(st);
    grc_net_free(net);
    return 0;
}
"""


@needs_make
@pytest.mark.skipif(shutil.which("pkg-config") is None, reason="needs pkg-config")
@pytest.mark.parametrize("link", ["shared", "static"])
def test_install_and_pkg_config(build, tmp_path, link):
    prefix = tmp_path / "prefix"
    subprocess.run(["make", "-s", "-C", str(CSRC), f"BUILD={build}", f"PREFIX={prefix}", "install"], check=True,
                   capture_output=True, timeout=600)
    for f in ("include/gridcore.h", "lib/libgridcore.so", "lib/libgridcore.a", "lib/pkgconfig/gridcore.pc"):
        assert (prefix / f).is_file(), f
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    flags = ["--cflags", "--libs"] + (["--static"] if link == "static" else [])
    pc = subprocess.run(["pkg-config", *flags, "gridcore"], env=env, capture_output=True, text=True, check=True)
    (tmp_path / "prog.c").write_text(PROGRAM)
    libs = pc.stdout.split()
    if link == "static":           # the archive, not the shared library next to it
        libs = [str(prefix / "lib" / "libgridcore.a") if a == "-lgridcore" else a for a in libs]
    exe = tmp_path / "prog"
    subprocess.run(["cc", "-std=c99", str(tmp_path / "prog.c"), "-o", str(exe), *libs, "-lm"], check=True,
                   capture_output=True, timeout=120)
    net = tmp_path / "square.grc"
    subprocess.run([sys.executable, "-m", "gridcore", "export", str(SQUARE), str(net)], check=True,
                   capture_output=True, cwd=ROOT)
    proc = subprocess.run([str(exe), str(net)], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, LD_LIBRARY_PATH=str(prefix / "lib")))
    assert proc.returncode == 0, proc.stderr
    stepper = Stepper(read_network(net).params)
    stepper.reset()
    np.testing.assert_allclose([float(v) for v in proc.stdout.split()], stepper.step([0.05, 0.3]), rtol=0,
                               atol=1e-10)
