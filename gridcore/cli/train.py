"""``python -m gridcore.train``: train a CTRNN to path-integrate.

Examples::

    python -m gridcore.train --arena square --preset quick
    python -m gridcore.train --arena hexagon --preset paper --out runs/hexagon
    python -m gridcore.train --out runs/hexagon --resume --iterations 2000
    python -m gridcore.train --arena square --arena-size 2.2 --motion-model smooth --motion start=centre
    python -m gridcore.train --preset grid-cells --backend c --threads 2 --out runs/grid-cells
    python -m gridcore.train --preset grid-cells --optimizer hf --iterations 200
"""

import argparse
import json
import logging
import os
import sys

from gridcore.cli.common import int_list, lr_steps, positive_int, run_main
from gridcore.model.params import REC_INITS
from gridcore.model.spec import INITIAL_STATES, NONLINEARITIES, READOUTS
from gridcore.sim.arenas import ARENA_NAMES
from gridcore.sim.trajectories import ENCODINGS, MOTION_MODELS
from gridcore.train.config import (
    BACKENDS,
    BLOCK_NAMES,
    DEFAULTS,
    NOISE_SOURCES,
    OPTIMIZERS,
    PLACE_CELL_SETTINGS,
    PRESETS,
    SCHEDULE_ERRORS,
    make_config,
)
from gridcore.train.hf import HFError
from gridcore.train.loop import train
from gridcore.train.rundir import RunDir
from gridcore.util.checks import DTYPES
from gridcore.util.dirlock import DirectoryLocked

# Setting names of every motion model, in order; the chosen model's are checked by the config.
_MOTION_KEYS = tuple(dict.fromkeys(k for defaults in MOTION_MODELS.values() for k in defaults))


def _key_value(keys):
    """argparse type of ``KEY=VALUE`` items with KEY one of ``keys``; VALUE read as JSON, else a string."""
    def parse(text):
        key, sep, value = text.partition("=")
        if not sep or key not in keys:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE with KEY one of {', '.join(keys)}")
        try:
            return key, json.loads(value)
        except json.JSONDecodeError:
            return key, value
    return parse


_motion_item = _key_value(_MOTION_KEYS)
_place_cell_item = _key_value(tuple(PLACE_CELL_SETTINGS))
# Options that merge into the model spec (config key "model"): option dest -> ModelSpec field.
_MODEL_OPTIONS = ("alpha", "nonlinearity", "readout", "initial_state", "n_place_cells")


def presets_table():
    """The presets' settings as help text: a line per setting some preset changes, a column per preset."""
    def flat(settings):  # dict-valued settings (model, motion, adam, ...) one line per field
        return {f"{k}.{f}" if isinstance(v, dict) else k: x for k, v in settings.items()
                for f, x in (v.items() if isinstance(v, dict) else [(None, v)])}
    presets, defaults = {n: flat(p) for n, p in PRESETS.items()}, flat(DEFAULTS)
    keys = dict.fromkeys(k for p in presets.values() for k in p)
    rows = [["setting", "default", *presets]] + [
        [k, _shown(defaults[k]) if k in defaults else "model's",
         *(_shown(p[k]) if k in p else "-" for p in presets.values())] for k in keys]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "presets (-: the default):\n" + "\n".join(
        "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _shown(value):
    """A setting's value as the table shows it, as its option takes it (lists comma-separated, pairs
    such as the Adam steps ``I:LR``, None as auto)."""
    if isinstance(value, (list, tuple)):
        return ",".join(":".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v) for v in value) or "none"
    return "auto" if value is None else str(value)


def build_parser():
    """The ``python -m gridcore.train`` argument parser."""
    # No ArgumentDefaultsHelpFormatter: the overrides default to None ("the preset's value").
    p = argparse.ArgumentParser(prog="python -m gridcore.train", description=__doc__.split("\n")[0],
                                epilog=presets_table(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arena", choices=ARENA_NAMES, default=None, help="arena shape (default: square)")
    p.add_argument("--preset", choices=tuple(PRESETS), default="quick", help="(default: quick)")
    p.add_argument("--out", default=None, help="run directory (default: runs/ARENA-PRESET)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    # Overrides: None means "not given", so --resume keeps the saved value.
    o = p.add_argument_group("overrides (default: the preset's value)")
    o.add_argument("--n-units", type=int)
    o.add_argument("--n-trials", type=int, help="M, trials per minibatch")
    o.add_argument("--n-steps", type=int, help="T, steps per trial")
    o.add_argument("--curvature-trials", type=int, help="trials used for the GN products")
    o.add_argument("--iterations", type=int, help="total iterations of the run")
    o.add_argument("--optimizer", choices=OPTIMIZERS)
    o.add_argument("--backend", choices=BACKENDS)
    o.add_argument("--threads", type=positive_int)
    o.add_argument("--dtype", choices=DTYPES,
                   help="element type of the C or Numba kernels (default float64; float32 is faster, "
                        "at float32's rounding)")
    o.add_argument("--seed", type=int)
    o.add_argument("--encoding", choices=tuple(ENCODINGS))
    o.add_argument("--noise-std", type=float)
    o.add_argument("--noise-source", choices=NOISE_SOURCES,
                   help="counter: noise computed in the kernels from a seed (no array; default); "
                        "array: an (M, T, N) array drawn in NumPy (runs made before the counter)")
    o.add_argument("--rec-init", choices=REC_INITS,
                   help="Wrec at the start: orthogonal, Gaussian (1.5^2/N) or uniform on (-1/sqrt(N), 1/sqrt(N)) "
                        "(default: the paper's choice for the arena)")
    o.add_argument("--frozen", type=lambda t: [v for v in t.split(",") if v], metavar="BLOCK,...",
                   help=f"parameter blocks kept at their initial values, of {', '.join(BLOCK_NAMES)} "
                        "(b: no biases)")
    o.add_argument("--arena-size", type=float, help="side of the equal-area square (arena units)")
    o.add_argument("--motion-model", choices=tuple(MOTION_MODELS),
                   help="how the animal moves: the paper's model or smooth foraging (default: paper)")
    o.add_argument("--motion", type=_motion_item, action="append", metavar="KEY=VALUE",
                   help="trajectory setting of the motion model (repeatable)")
    m = p.add_argument_group("model (default: the preset's; merged into config.json's \"model\")")
    m.add_argument("--alpha", type=float, help="dt/tau in (0, 1]: 0.1 the paper's CTRNN, 1 a vanilla RNN")
    m.add_argument("--nonlinearity", choices=tuple(NONLINEARITIES), help="rate function phi")
    m.add_argument("--readout", choices=READOUTS,
                   help="outputs: x, y with squared error, or logits over the place cells with "
                        "cross-entropy against their code (needs --n-place-cells)")
    m.add_argument("--initial-state", choices=INITIAL_STATES,
                   help="x_0: zero, or Wenc times the place-cell code of the start position (needs "
                        "--n-place-cells); give it with --motion start=uniform so that trials start "
                        "anywhere (the paper's motion model starts them all at the centre)")
    m.add_argument("--n-place-cells", type=int,
                   help="place cells of the readout or encoded initial state (>= 2; 0 when neither uses them)")
    m.add_argument("--place-cells", type=_place_cell_item, action="append", metavar="KEY=VALUE",
                   help=f"place-cell setting, KEY one of {', '.join(PLACE_CELL_SETTINGS)} (repeatable)")
    o.add_argument("--damping", type=float, help="HF initial lambda")
    o.add_argument("--lr", type=float, help="Adam learning rate")
    o.add_argument("--lr-steps", type=lr_steps, metavar="I:LR,...",
                   help="Adam step schedule: learning rate LR from iteration I on (e.g. 4000:3e-4)")
    o.add_argument("--eval-every", type=int)
    o.add_argument("--checkpoint-every", type=int)
    o.add_argument("--snapshot-every", type=int)
    o.add_argument("--snapshot-at", type=int_list, metavar="I,J,...")
    o.add_argument("--lam-rec", type=float, help="weight decay on Wrec: lam_rec sum Wrec^2 (default 0: off)")
    o.add_argument("--lam-rec-from", type=int, help="first iteration with the weight decay on Wrec (default 0)")
    o.add_argument("--schedule-error", choices=SCHEDULE_ERRORS,
                   help="the E the L2 and metabolic weights are scaled to: excess (E less the least E the "
                        "targets allow; the default) or total (E itself); the same under the x, y readout")
    o.add_argument("--no-noise", action="store_true", help="ablation: no noise (noise_std = 0)")
    o.add_argument("--no-metabolic", action="store_true", help="ablation: no metabolic cost")
    o.add_argument("--no-l2", action="store_true", help="ablation: no L2 weight penalty")
    p.add_argument("--quiet", action="store_true", help="no per-iteration lines")
    return p


def overrides_from_args(args):
    """Config overrides, by flat setting name, for the options actually given on the command line."""
    names = ("arena", "n_units", "n_trials", "n_steps", "curvature_trials", "iterations", "optimizer",
             "backend", "threads", "dtype", "seed", "encoding", "noise_std", "noise_source", "rec_init", "frozen",
             "arena_size", "motion_model", "eval_every", "checkpoint_every", "snapshot_every", "snapshot_at",
             "schedule_error")
    out = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    if args.motion:
        out["motion"] = dict(args.motion)
    model = {k: getattr(args, k) for k in _MODEL_OPTIONS if getattr(args, k) is not None}
    if model:
        out["model"] = model
    if args.place_cells:
        out["place_cells"] = dict(args.place_cells)
    if args.lam_rec is not None:
        out["lam_rec"] = args.lam_rec
    if args.lam_rec_from is not None:
        out["lam_rec_from"] = args.lam_rec_from
    if args.damping is not None:
        out["hf"] = {"damping": args.damping}
    adam = {k: v for k, v in (("lr", args.lr), ("lr_steps", args.lr_steps)) if v is not None}
    if adam:
        out["adam"] = adam
    if args.no_noise:
        out["noise_std"] = 0.0
    if args.no_metabolic:
        out["metabolic"] = False
    if args.no_l2:
        out["l2"] = False
    return out


def main(argv=None):
    """Run the command; returns the exit status (0 done, 2 a refused input, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    overrides = overrides_from_args(args)
    where = []  # the run directory, once known

    def intact():
        """What an OSError left of the run: its last checkpoint (written atomically)."""
        done = RunDir(where[0]).checkpoint_iteration() if where else None
        return None if done is None else (f"the checkpoint of iteration {done} in {where[0]} is intact: "
                                          "continue with --resume once that is fixed")

    def work():
        if args.resume:
            if args.out is None:
                raise ValueError("--resume needs --out DIR, the run to continue")
            cfg = RunDir(args.out).read_config().with_overrides(**overrides)
        else:
            overrides.setdefault("arena", "square")
            cfg = make_config(args.preset, **overrides)
        out = args.out or os.path.join("runs", f"{cfg.task.arena}-{args.preset}")
        where.append(out)
        opt = cfg.optimizer
        spec = cfg.model
        model = "" if spec.readout == "xy" and spec.initial_state == "zero" else \
            f", {spec.readout} readout, {spec.initial_state} x_0, Np={spec.n_place_cells}"
        print(f"gridcore.cli.train: {cfg.task.arena} arena, N={cfg.network.n_units}, M={opt.n_trials}, "
              f"T={cfg.task.n_steps}, {spec.nonlinearity}, alpha={spec.alpha:g}{model}, {opt.name}, "
              f"{opt.iterations} iterations -> {out}", file=sys.stderr)
        train(cfg, out, resume=args.resume, stream=None if args.quiet else sys.stderr)
        return os.path.join(out, "final.npz")

    return run_main("gridcore.train", work,
                    (ValueError, FileNotFoundError, FileExistsError, ImportError, HFError, DirectoryLocked),
                    os_hint=intact)


if __name__ == "__main__":
    sys.exit(main())
