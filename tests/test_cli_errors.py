"""The bad-input table of the commands (issue 23): each bad command, its exit status and its message.

Every case runs the command's ``main(argv)`` in this process on a copy of one
tiny finished run, then checks the message names what is wrong and that
nothing saved was changed (or no run folder was made). Read-only folders
and a full disk are simulated: the tests may run as root, whom ``chmod``
does not stop.
"""

import builtins
import errno
import hashlib
import json
import os
import re
import shutil
import threading

import numpy as np
import pytest

from gridcore.cli import analyze as analyze_cli
from gridcore.cli import reproduce as reproduce_cli
from gridcore.cli import train as train_cli
from gridcore.model.params import Params
from gridcore.train.config import PRESETS, make_config
from gridcore.train.rundir import RunDir, load_run
from gridcore.util.dirlock import dir_lock
from gridcore.util.fileio import atomic_write_json, load_npz

TINY = ["--n-units", "8", "--n-trials", "4", "--n-steps", "10", "--curvature-trials", "2", "--eval-every", "0",
        "--backend", "numpy", "--threads", "1", "--quiet"]
ANALYZE = ["--quick", "--backend", "numpy", "--n-trials", "8", "--long-steps", "2000", "--block-steps", "500",
           "--shuffles", "2", "--bins", "6", "--quiet"]
DONE = 3  # iterations of the finished run


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 3-iteration run, copied by each case."""
    path = tmp_path_factory.mktemp("finished") / "run"
    assert train_cli.main(["--out", str(path), *TINY, "--iterations", str(DONE)]) == 0
    return path


@pytest.fixture
def run(finished, tmp_path):
    """A copy of the finished run to break."""
    path = tmp_path / "run"
    shutil.copytree(finished, path)
    return path


def contents(folder):
    """Every file under ``folder`` with the hash of its bytes (what a refused command must leave alone)."""
    return {os.path.relpath(os.path.join(d, f), folder): hashlib.sha256(open(os.path.join(d, f), "rb").read()).digest()
            for d, _, files in os.walk(folder) for f in files}


def set_field(path, key, value):
    """Rewrite one field of a checkpoint (a corrupted file)."""
    data = dict(np.load(path))
    data[key] = np.asarray(value)
    np.savez(path, **data)


def read_only(monkeypatch, folder):
    """Make every write under ``folder`` fail as in a read-only folder (EACCES)."""
    top = os.path.realpath(folder)

    def inside(path):
        path = os.path.realpath(os.fspath(path))
        return path == top or path.startswith(top + os.sep)

    def deny(path):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))

    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir

    def fake_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and set(mode) & set("wax+") and inside(file):
            deny(file)
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
            deny(path)
        return real_os_open(path, flags, *args, **kwargs)

    def fake_mkdir(path, *args, **kwargs):
        if inside(path) and not os.path.exists(path):
            deny(path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)


def write(path, text=None, data=None, **arrays):
    """A path file: text, bytes, or arrays of an .npz."""
    if arrays:
        np.savez(path, **arrays)
    elif data is not None:
        path.write_bytes(data)
    else:
        path.write_text(text)
    return path


T500 = np.arange(500) * 0.02

R = ["--out", "{run}"]
RESUME = [*R, "--resume", "--iterations", "5"]
NEW = ["--out", "{tmp}/new"]

# (case, how to break the copy `run` (tmp: the test's folder), argv, regexes the message must match, what must
# stay: "run" (the run folder unchanged) or "nothing" (also no folder tmp/new made)).
TRAIN = [
    ("resume below the iterations done", None, [*R, "--resume", "--iterations", "2"],
     [r"has done 3 iterations, more than the 2 asked for", r"iterations >= 3"], "run"),
    ("checkpoint iteration past the run", lambda run, tmp: set_field(run / "checkpoint.npz", "iteration", 1000),
     RESUME, [r"checkpoint\.npz", r"field 'iteration' = 1000", r"0\.\.3"], "run"),
    ("checkpoint iteration negative", lambda run, tmp: set_field(run / "checkpoint.npz", "iteration", -7),
     RESUME, [r"checkpoint\.npz", r"field 'iteration' = -7"], "run"),
    ("checkpoint iteration not an integer", lambda run, tmp: set_field(run / "checkpoint.npz", "iteration", 2.5),
     RESUME, [r"checkpoint\.npz", r"field 'iteration' = 2\.5"], "run"),
    ("checkpoint format unknown", lambda run, tmp: set_field(run / "checkpoint.npz", "format", 7),
     RESUME, [r"checkpoint\.npz", r"field 'format' = 7, expected 1"], "run"),
    ("checkpoint hf_damping NaN", lambda run, tmp: set_field(run / "checkpoint.npz", "hf_damping", np.nan),
     RESUME, [r"checkpoint\.npz", r"hf_damping must be a finite number > 0, got nan"], "run"),
    ("checkpoint hf_damping negative", lambda run, tmp: set_field(run / "checkpoint.npz", "hf_damping", -1.0),
     RESUME, [r"checkpoint\.npz", r"hf_damping .* got -1\.0"], "run"),
    ("checkpoint hf_damping text", lambda run, tmp: set_field(run / "checkpoint.npz", "hf_damping", "x"),
     RESUME, [r"checkpoint\.npz", r"hf_damping .* got 'x'"], "run"),
    ("checkpoint warm start of the wrong shape",
     lambda run, tmp: set_field(run / "checkpoint.npz", "hf_previous", np.zeros(5)),
     RESUME, [r"checkpoint\.npz", r"hf_previous \(the CG warm start\)", r"\(5,\)"], "run"),
    ("checkpoint lam_l2 NaN", lambda run, tmp: set_field(run / "checkpoint.npz", "lam_l2", np.nan),
     RESUME, [r"checkpoint\.npz", r"lam_l2 must be finite"], "run"),
    ("checkpoint theta NaN", lambda run, tmp: set_field(run / "checkpoint.npz", "theta", np.full(104, np.nan)),
     RESUME, [r"checkpoint\.npz", r"field 'theta'.*NaN"], "run"),
    ("checkpoint not an npz", lambda run, tmp: (run / "checkpoint.npz").write_bytes(b"not a zip"),
     RESUME, [r"checkpoint\.npz: unreadable \.npz"], "run"),
    ("unreadable log line before the last",
     lambda run, tmp: (run / "log.jsonl").write_text('{"iteration\n' + (run / "log.jsonl").read_text()),
     RESUME, [r"log\.jsonl, line 1: not a log record"], "run"),
    ("resume without config.json beside a checkpoint", lambda run, tmp: (run / "config.json").unlink(),
     RESUME, [r"config\.json: no such file", r"cannot be resumed", r"afresh"], "run"),
    ("resume of a folder that is no run", None, ["--out", "{tmp}", "--resume"],
     [r"config\.json: no such file", r"run directory\?"], "run"),
    ("resume without --out", None, ["--resume"], [r"--resume needs --out"], "run"),
    ("fresh start into a run", None, [*R, "--iterations", "5"], [r"already holds a run; use --resume"], "run"),
    ("--out a file", lambda run, tmp: (tmp / "file").write_text("x"), ["--out", "{tmp}/file"],
     [r"file is a file, not a run directory"], "nothing"),
    ("too many units for memory", None, [*NEW, "--n-units", "1000000"],
     [r"needs at least [\d.]+ TiB of memory", r"parameters [\d.]+ TiB", r"more than this machine's",
      r"reduce n_units"], "nothing"),
    ("too many steps for memory", None, [*NEW, "--n-steps", "1000000000"],
     [r"needs at least [\d.]+ [TP]iB of memory", r"trials [\d.]+ TiB", r"more than this machine's"], "nothing"),
    ("an animal that never moves", None, [*NEW, "--motion", "p_zero_speed=1"],
     [r"motion: p_zero_speed = 1 with start 'centre'", r"p_zero_speed < 1"], "nothing"),
    ("a motion setting out of range", None, [*NEW, "--motion", "p_zero_speed=2"],
     [r"motion: p_zero_speed must be a probability in \[0, 1\], got 2"], "nothing"),
    ("a smooth-motion setting out of range", None, [*NEW, "--motion-model", "smooth", "--motion", "dt=-1"],
     [r"motion: dt must be positive"], "nothing"),
    ("--out in a read-only folder", lambda run, tmp: tmp.joinpath("ro").mkdir(), ["--out", "{tmp}/ro/new"],
     [r"ro/new: Permission denied \(no permission"], "nothing"),
    ("resume in a read-only run folder", None, RESUME, [r"run/\.lock: Permission denied \(no permission"], "run"),
]


@pytest.mark.parametrize("case, breaks, argv, messages, keeps", TRAIN, ids=[c[0] for c in TRAIN])
def test_train_refuses(case, breaks, argv, messages, keeps, run, tmp_path, monkeypatch, capsys):
    if breaks is not None:
        breaks(run, tmp_path)
    if "read-only" in case:
        read_only(monkeypatch, tmp_path / "ro" if "--out in" in case else run)
    before = contents(run)
    assert train_cli.main([*TINY, *(a.format(tmp=tmp_path, run=run) for a in argv)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("gridcore.train: error: ")
    for pattern in messages:
        assert re.search(pattern, err), (pattern, err)
    assert contents(run) == before
    if keeps == "nothing":
        assert not os.path.isdir(tmp_path / "new") and not os.path.exists(tmp_path / "ro" / "new")


def test_a_full_disk_mid_run_leaves_the_checkpoint_and_resumes(tmp_path, monkeypatch, capsys):
    calls = []
    real_fsync = os.fsync

    def fsync(fd):  # the 6th atomic write is iteration 3's checkpoint: config, snapshot 0, checkpoints 0-2 pass
        calls.append(fd)
        if len(calls) >= 6:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    out = tmp_path / "run"
    argv = ["--out", str(out), *TINY, "--iterations", "5", "--checkpoint-every", "1"]
    assert train_cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.search(r"run/checkpoint\.npz: No space left on device \(the disk is full: free some space\); "
                     r"the checkpoint of iteration 2 in .*run is intact: continue with --resume", err), err
    assert not [f for f in os.listdir(out) if f.startswith(".tmp-")]
    assert int(load_npz(out / "checkpoint.npz", required=("iteration",), optional=(
        "format", "theta", "lam_l2", "lam_fr", "lam_rec", "hf_damping", "hf_previous"))["iteration"]) == 2
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert train_cli.main([*argv, "--resume"]) == 0
    assert [r["iteration"] for r in RunDir(out).read_log()] == [1, 2, 3, 4, 5]


def test_a_locked_run_is_refused_naming_the_holder(run, capsys):
    held, release = threading.Event(), threading.Event()

    def holder():  # another thread's flock excludes like another process's
        with dir_lock(run):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        held.wait(30)
        before = contents(run)
        assert train_cli.main(["--out", str(run), *TINY, "--resume", "--iterations", "5"]) == 2
        assert f"is in use by process {os.getpid()} on " in capsys.readouterr().err
        assert contents(run) == before
    finally:
        release.set()
        thread.join()
    assert train_cli.main(["--out", str(run), *TINY, "--resume", "--iterations", "4"]) == 0


# ---------------------------------------------------------------- resume that cannot lie


def test_resume_to_the_iterations_done_writes_nothing(run, caplog):
    before = contents(run)
    with caplog.at_level("INFO"):
        assert train_cli.main(["--out", str(run), *TINY, "--resume", "--iterations", str(DONE)]) == 0
    assert "has done its 3 iterations already; nothing to do (nothing written)" in caplog.text
    assert contents(run) == before


def test_resume_past_a_finished_run_keeps_its_end_as_a_snapshot(run, tmp_path, monkeypatch):
    final = Params.load(run / "final.npz", n_units=8, n_in=2, n_out=2)
    metrics = json.loads((run / "final_metrics.json").read_text())

    def killed(*args, **kwargs):  # stopped while training on: the files must not claim it ended
        raise KeyboardInterrupt
    monkeypatch.setattr("gridcore.train.loop.hf_step", killed)
    assert train_cli.main(["--out", str(run), *TINY, "--resume", "--iterations", "6"]) == 130
    assert not (run / "final.npz").exists() and not (run / "final_metrics.json").exists()
    kept = Params.load(run / "snapshots" / "iter_000003.npz", n_units=8, n_in=2, n_out=2)
    np.testing.assert_array_equal(kept.flat, final.flat)
    assert json.loads((run / "snapshots" / "iter_000003_metrics.json").read_text()) == metrics
    with pytest.raises(FileNotFoundError, match="has not finished"):
        load_run(run)
    monkeypatch.undo()
    assert train_cli.main(["--out", str(run), *TINY, "--resume", "--iterations", "6"]) == 0
    done = load_run(run)
    assert done.final_iteration == 6 == json.loads((run / "final_metrics.json").read_text())["iterations"]
    assert 3 in done.snapshots


def test_a_fresh_start_sets_aside_a_checkpoint_without_settings(run, caplog):
    (run / "config.json").unlink()
    old = contents(run)
    assert train_cli.main(["--out", str(run), *TINY, "--iterations", "2"]) == 0
    assert "no config.json (the run's settings), so it cannot be resumed: moved them to" in caplog.text
    kept = contents(run / "orphaned-1")
    assert kept == {"checkpoint.npz": old["checkpoint.npz"], "log.jsonl": old["log.jsonl"]}
    assert load_run(run).final_iteration == 2


def test_make_config_refuses_bad_values_before_any_folder():
    with pytest.raises(ValueError, match="threads must be"):
        make_config("quick", threads="x")
    with pytest.raises(ValueError, match=r"snapshot_at must be a list of iterations .* got 5"):
        make_config("quick", snapshot_at=5)
    with pytest.raises(ValueError, match="motion: p_zero_speed = 1"):
        make_config("quick", motion={"p_zero_speed": 1})
    make_config("quick", motion={"p_zero_speed": 1, "start": "uniform"})  # trials differ in where they stay


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_run_files_respect_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write_json(tmp_path / "f.json", {})
    finally:
        os.umask(old)
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == 0o666 & ~umask


# ---------------------------------------------------------------- analyze


TRAJECTORIES = [
    ("two-row path", lambda d: write(d / "two.csv", "t,x,y\n0,0,0\n0.02,0.01,0.01\n"),
     [r"two\.csv: 2 valid samples over 0\.02 s would make \d+ network steps", r"at least \d+ samples",
      r"--trajectory-dt"]),
    ("empty file", lambda d: write(d / "empty.csv", ""), [r"empty\.csv: no header row", r"at least 2 rows"]),
    ("binary file", lambda d: write(d / "bin.csv", data=bytes(range(128, 256)) * 3),
     [r"bin\.csv: not UTF-8 text \(byte 0x80 at offset 0\)"]),
    ("latin-1 file", lambda d: write(d / "latin.csv", data="t,x,y\n0,0,0\n1,0.5,caf\xe9\n".encode("latin-1")),
     [r"latin\.csv: not UTF-8 text \(byte 0xe9", r"iconv"]),
    ("object array", lambda d: write(d / "obj.npz", t=np.array([0, 1, 2], dtype=object), x=np.zeros(3),
                                     y=np.zeros(3)),
     [r"obj\.npz: holds Python objects"]),
    ("npz not a zip", lambda d: write(d / "junk.npz", data=b"\x00" * 64), [r"junk\.npz: not an \.npz file"]),
    ("columns of unequal length", lambda d: write(d / "uneq.npz", t=T500, x=np.zeros(450), y=np.zeros(500)),
     [r"uneq\.npz: columns of different lengths \(t 500, x 450, y 500\)"]),
    ("csv row too short", lambda d: write(d / "short.csv", "t,x,y\n0,0,0\n1,1\n"),
     [r"short\.csv: line 3 has 2 fields, the header has 3"]),
    ("all positions NaN", lambda d: write(d / "nan.npz", t=T500, x=np.full(500, np.nan), y=np.full(500, np.nan)),
     [r"nan\.npz: 0 of 500 samples have finite x and y; a path needs at least 2"]),
    ("constant position", lambda d: write(d / "const.npz", t=T500, x=np.full(500, 0.3), y=np.full(500, 0.3)),
     [r"const\.npz: the position never changes \(x = 0\.3, y = 0\.3"]),
    ("missing file", lambda d: d / "missing.csv", [r"missing\.csv: no such path file"]),
]


@pytest.mark.parametrize("case, make, messages", TRAJECTORIES, ids=[c[0] for c in TRAJECTORIES])
def test_analyze_refuses_bad_trajectory_files(case, make, messages, run, tmp_path, capsys):
    path = make(tmp_path)
    assert analyze_cli.main([str(run), *ANALYZE, "--trajectory", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("gridcore.analyze: error: ")
    for pattern in messages:
        assert re.search(pattern, err), (pattern, err)
    assert not (run / "analysis").exists()


def test_analyze_refuses_long_steps_of_one_block_up_front(run, capsys):
    argv = [str(run), *ANALYZE, "--long-steps", "500", "--block-steps", "500"]
    assert analyze_cli.main(argv) == 2
    assert "long_steps (500) must be at least two blocks of block_steps = 500" in capsys.readouterr().err
    assert not (run / "analysis").exists()


def test_analyze_in_a_read_only_run_folder(run, monkeypatch, capsys):
    read_only(monkeypatch, run)
    before = contents(run)
    assert analyze_cli.main([str(run), *ANALYZE]) == 2
    assert re.search(r"run/analysis: Permission denied \(no permission", capsys.readouterr().err)
    assert contents(run) == before


# ---------------------------------------------------------------- reproduce --status


def test_reproduce_status_finds_the_results_from_any_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert os.path.isabs(reproduce_cli.RESULTS) and os.path.isdir(reproduce_cli.RESULTS)
    assert reproduce_cli.main(["--status"]) == 0
    table = capsys.readouterr().out
    assert re.search(r"\| square \| 1000 / 1000 \| yes \|", table), table


@pytest.mark.parametrize("where, message", [("missing", r"missing: no such folder"),
                                            ("empty", r"empty holds none of the runs square, triangle")])
def test_reproduce_status_of_a_folder_without_runs(where, message, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert reproduce_cli.main(["--status", "--out", str(tmp_path / where)]) == 2
    assert re.search(message, capsys.readouterr().err)


# ---------------------------------------------------------------- help texts


def test_train_help_shows_the_presets(capsys):
    with pytest.raises(SystemExit):
        train_cli.main(["--help"])
    text = capsys.readouterr().out
    table = text[text.index("presets (-: the default):"):].splitlines()
    assert table[1].split() == ["setting", "default", *PRESETS]
    rows = {line.split()[0]: line.split()[2:] for line in table[2:]}
    for i, preset in enumerate(PRESETS.values()):
        for key, value in preset.items():
            if isinstance(value, dict):
                for field, v in value.items():
                    shown = train_cli._shown(v) if isinstance(v, list) else str(v)   # lr_steps: 4000:0.0003
                    assert rows[f"{key}.{field}"][i] == shown, (key, field)
            elif not isinstance(value, list):
                assert rows[key][i] == str(value), key
        for key, shown in rows.items():
            if shown[i] == "-":
                assert key.split(".")[0] not in preset or key.split(".")[1] not in preset[key.split(".")[0]]


def test_analyze_help_gives_each_default_once(capsys):
    with pytest.raises(SystemExit):
        analyze_cli.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text and "(default: False)" not in text
    for option in re.split(r" (?=--[a-z])", text[text.index("--compare"):]):
        assert option.count("default") <= 1, option
    assert "--seed SEED seed of every random draw of the analysis (default: 0)" in text
    assert "default enough for 250,000 steps" in text and "(default: tsne)" in text
