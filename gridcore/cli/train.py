"""``python -m gridcore.train``: train a CTRNN to path-integrate.

Examples::

    python -m gridcore.train --arena square --preset quick
    python -m gridcore.train --arena hexagon --preset paper --out runs/hexagon
    python -m gridcore.train --out runs/hexagon --resume --iterations 2000
    python -m gridcore.train --arena square --arena-size 2.2 --motion-model smooth --motion start=centre
"""

import argparse
import json
import logging
import os
import sys

from gridcore.cli.common import int_list, positive_int, run_main
from gridcore.model.params import REC_INITS
from gridcore.sim.arenas import ARENA_NAMES
from gridcore.sim.trajectories import ENCODINGS, MOTION_MODELS
from gridcore.train.config import BACKENDS, OPTIMIZERS, PRESETS, make_config
from gridcore.train.hf import HFError
from gridcore.train.loop import train
from gridcore.train.rundir import RunDir

# Setting names of every motion model, in order; the chosen model's are checked by the config.
_MOTION_KEYS = tuple(dict.fromkeys(k for defaults in MOTION_MODELS.values() for k in defaults))


def _motion_item(text):
    key, sep, value = text.partition("=")
    if not sep or key not in _MOTION_KEYS:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with KEY one of {', '.join(_MOTION_KEYS)}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def build_parser():
    """The ``python -m gridcore.train`` argument parser."""
    # No ArgumentDefaultsHelpFormatter: the overrides default to None ("the preset's value").
    p = argparse.ArgumentParser(prog="python -m gridcore.train", description=__doc__.split("\n")[0])
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
    o.add_argument("--seed", type=int)
    o.add_argument("--encoding", choices=tuple(ENCODINGS))
    o.add_argument("--noise-std", type=float)
    o.add_argument("--rec-init", choices=REC_INITS)
    o.add_argument("--arena-size", type=float, help="side of the equal-area square (arena units)")
    o.add_argument("--motion-model", choices=tuple(MOTION_MODELS),
                   help="how the animal moves: the paper's model or smooth foraging (default: paper)")
    o.add_argument("--motion", type=_motion_item, action="append", metavar="KEY=VALUE",
                   help="trajectory setting of the motion model (repeatable)")
    o.add_argument("--damping", type=float, help="HF initial lambda")
    o.add_argument("--lr", type=float, help="Adam learning rate")
    o.add_argument("--eval-every", type=int)
    o.add_argument("--checkpoint-every", type=int)
    o.add_argument("--snapshot-every", type=int)
    o.add_argument("--snapshot-at", type=int_list, metavar="I,J,...")
    o.add_argument("--no-noise", action="store_true", help="ablation: no noise (noise_std = 0)")
    o.add_argument("--no-metabolic", action="store_true", help="ablation: no metabolic cost")
    o.add_argument("--no-l2", action="store_true", help="ablation: no L2 weight penalty")
    p.add_argument("--quiet", action="store_true", help="no per-iteration lines")
    return p


def overrides_from_args(args):
    """Config overrides, by flat setting name, for the options actually given on the command line."""
    names = ("arena", "n_units", "n_trials", "n_steps", "curvature_trials", "iterations", "optimizer",
             "backend", "threads", "seed", "encoding", "noise_std", "rec_init", "arena_size", "motion_model",
             "eval_every", "checkpoint_every", "snapshot_every", "snapshot_at")
    out = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    if args.motion:
        out["motion"] = dict(args.motion)
    if args.damping is not None:
        out["hf"] = {"damping": args.damping}
    if args.lr is not None:
        out["adam"] = {"lr": args.lr}
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

    def work():
        if args.resume:
            if args.out is None:
                raise ValueError("--resume needs --out DIR, the run to continue")
            cfg = RunDir(args.out).read_config().with_overrides(**overrides)
        else:
            overrides.setdefault("arena", "square")
            cfg = make_config(args.preset, **overrides)
        out = args.out or os.path.join("runs", f"{cfg.task.arena}-{args.preset}")
        opt = cfg.optimizer
        print(f"gridcore.cli.train: {cfg.task.arena} arena, N={cfg.network.n_units}, M={opt.n_trials}, "
              f"T={cfg.task.n_steps}, {opt.name}, {opt.iterations} iterations -> {out}",
              file=sys.stderr)
        train(cfg, out, resume=args.resume, stream=None if args.quiet else sys.stderr)
        return os.path.join(out, "final.npz")

    return run_main("gridcore.train", work,
                    (ValueError, FileNotFoundError, FileExistsError, ImportError, HFError))


if __name__ == "__main__":
    sys.exit(main())
