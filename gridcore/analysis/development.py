"""How the units develop during training (C5, paper Fig. 4).

:func:`select_stages` picks early, intermediate and late training
iterations; :func:`stage_responses` runs each stage's network on the same
trials with the same noise and correlates every (stage, unit) pair;
:func:`embed` places the pairs' correlation distances in 2-D (t-SNE or
classical MDS); :func:`development` puts it together with the distance each
unit travels between stages.
"""

import logging
import math

import numpy as np

from gridcore.analysis.celltypes import SPATIAL_TYPES
from gridcore.analysis.jsonready import finite_median, floats
from gridcore.analysis.ratemaps import RateMapAccumulator, map_correlation
from gridcore.analysis.recording import run_chunks, trial_start_codes
from gridcore.model.spec import PAPER
from gridcore.util.checks import check_choice

log = logging.getLogger(__name__)

__all__ = ["EMBEDDINGS", "select_stages", "stage_responses", "embed", "development"]

EMBEDDINGS = ("tsne", "mds")


def select_stages(snapshot_iterations, final_iteration, stages=None):
    """Training iterations shown as early, intermediate and late (C5, paper Fig. 4).

    Default: late = the final network; early = the first snapshot after
    initialisation (iteration 0 if there is no other); intermediate = the
    snapshot between them closest to their geometric mean (training changes
    fastest early on, so stages are spaced in log-iterations).

    Parameters
    ----------
    snapshot_iterations : iterable of int
        Iterations with a snapshot (before ``final_iteration``).
    final_iteration : int
    stages : sequence of int, optional
        Explicit iterations (each a snapshot or the final one).

    Returns
    -------
    list of int, increasing; one entry when there are no snapshots.
    """
    available = sorted({int(i) for i in snapshot_iterations if i < final_iteration}) + [int(final_iteration)]
    if stages is not None:
        bad = [s for s in stages if s not in available]
        if bad or not stages:
            raise ValueError(f"stages must be training iterations with parameters; got {list(stages)}, "
                             f"available: {available}")
        return sorted(set(int(s) for s in stages))
    before = available[:-1]
    if not before:
        return available
    positive = [i for i in before if i > 0]
    early = positive[0] if positive else 0
    middle = [i for i in positive if i > early]
    if not middle:
        return [early, final_iteration]
    target = 0.5 * (math.log(early) + math.log(final_iteration))
    inter = min(middle, key=lambda i: abs(math.log(i) - target))
    return [early, inter, final_iteration]


def stage_responses(params_list, backend, traj, noise_std, seed, spec=PAPER, bins=20,
                    trial_chunk=50, place_cells=None):
    """Run several networks on the same trials with the same noise; correlate every unit pair.

    Activity is streamed over chunks of trials: only the sums and cross
    products of all (stage, unit) responses and per-stage rate-map sums are
    kept, never the activity of all trials at once.

    Parameters
    ----------
    params_list : list of Params (S networks of N units)
    backend : backend object
    traj : Trajectories (M trials of T steps)
    noise_std : float; sd of the unit noise (the same draws for every network)
    seed : int; source of the noise
    spec : ModelSpec
    bins : int; spatial bins of the rate maps
    trial_chunk : int; trials per chunk (memory: S trial_chunk T N doubles)
    place_cells : PlaceCells or None; the run's place cells (the encoded
        initial state starts each trial from the code of ``traj.start``)

    Returns
    -------
    corr : ndarray, shape (S N, S N)
        Pearson correlation of the activity of (stage s, unit u) at row s N + u;
        NaN for a unit with no variance.
    maps : ndarray, shape (S, N, H, W)
        Unsmoothed rate maps per stage.
    """
    n = params_list[0].n_units
    k = len(params_list) * n
    total, gram, count = np.zeros(k), np.zeros((k, k)), 0
    accs = [RateMapAccumulator(traj.arena, bins, n) for _ in params_list]
    m = traj.inputs.shape[0]
    codes = trial_start_codes(spec, place_cells, traj.start)
    for c, lo in enumerate(range(0, m, trial_chunk)):
        sl = slice(lo, min(m, lo + trial_chunk))
        cols = []
        for p, acc in zip(params_list, accs):
            # Same seed per chunk for every stage: identical noise draws.
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(c,)))
            u = np.concatenate([r.u for _, _, r in run_chunks(
                p, backend, traj.inputs[sl], noise_std, rng, spec,
                start_codes=None if codes is None else codes[sl])], axis=1)
            acc.add(u, traj.positions[sl])
            cols.append(u.reshape(-1, n))
        x = np.hstack(cols)
        total += x.sum(axis=0)
        gram += x.T @ x
        count += len(x)
    cov = gram / count - np.outer(total, total) / count ** 2
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sd, sd)
    dead = sd <= 1e-12 * max(1.0, float(sd.max()))
    corr[dead, :] = np.nan
    corr[:, dead] = np.nan
    return np.clip(corr, -1.0, 1.0), np.stack([a.maps() for a in accs])


def embed(dist, seed, method="tsne"):
    """2-D embedding of points from their pairwise distances.

    Parameters
    ----------
    dist : array_like, shape (n, n)
        Symmetric, non-negative, zero diagonal.
    seed : int
        Seed of t-SNE's random initialisation.
    method : {"tsne", "mds"}
        ``"tsne"``: scikit-learn's t-SNE on the precomputed distances
        (perplexity min(30, (n - 1) / 3)), as in the paper. Without
        scikit-learn, or with fewer than 5 points, classical (Torgerson) MDS
        is used instead and the returned info says why.

    Returns
    -------
    coords : ndarray, shape (n, 2)
    info : dict with ``method`` (the one used), ``requested``, ``note`` and, for t-SNE, ``perplexity``.
    """
    check_choice("method", method, EMBEDDINGS)
    dist = np.asarray(dist, float)
    n = len(dist)
    info = {"requested": method, "method": method, "note": None}
    if method == "tsne":
        try:
            from sklearn.manifold import TSNE
        except ImportError:
            info.update(method="mds", note="t-SNE unavailable (scikit-learn is not installed: "
                                           "pip install 'gridcore[tsne]'); classical MDS used instead")
            log.warning(info["note"])
        else:
            if n < 5:
                info.update(method="mds", note=f"only {n} points: too few for t-SNE, classical MDS used")
            else:
                perplexity = min(30.0, (n - 1) / 3.0)
                tsne = TSNE(n_components=2, perplexity=perplexity, metric="precomputed",
                            init="random", random_state=seed)
                info["perplexity"] = perplexity
                return tsne.fit_transform(dist), info
    # Classical MDS: top eigenvectors of the double-centred squared distances.
    j = np.eye(n) - 1.0 / n
    b = -0.5 * j @ (dist ** 2) @ j
    w, v = np.linalg.eigh(b)
    top = np.argsort(w)[::-1][:2]
    coords = v[:, top] * np.sqrt(np.clip(w[top], 0.0, None))
    coords *= np.where(coords[np.argmax(np.abs(coords), axis=0), [0, 1]] < 0, -1.0, 1.0)  # fix signs
    return coords, info


def development(run, stages, backend, traj, noise_std, seed, bins=20, spatial_type=None,
                method="tsne"):
    """How the units' responses change during training (C5, paper Fig. 4).

    Every stage's network runs on the same test trials with the same noise;
    each (stage, unit) is a point, two points are ``1 - r`` apart (r: the
    Pearson correlation of their activity over the trials), and the points
    are embedded in 2-D (t-SNE by default). A unit whose response settles
    early travels little between stages.

    Parameters
    ----------
    run : Run
    stages : list of int
        Iterations (from :func:`select_stages`), at least 2.
    backend : backend object
    traj : Trajectories
        The test trials.
    noise_std : float
    seed : int
        Seeds the noise and the embedding.
    bins : int
        Spatial bins of the per-stage rate maps.
    spatial_type : array of str, shape (N,), optional
        Types of the final network's units (highlighted groups).
    method : {"tsne", "mds"}

    Returns
    -------
    dict (JSON-ready) with ``stages``, ``embedding`` (method info),
    ``coords`` (S, N, 2), per-unit ``travel_embedding`` and
    ``travel_correlation``, ``response_correlation_first_last``,
    ``map_correlation_to_last`` (S, N), ``summary`` by group (all, border,
    grid, and the other types present): n and medians; and ``maps`` (S, N,
    H, W) as an array (not JSON) for the figures.
    """
    if len(stages) < 2:
        raise ValueError(f"development needs at least 2 stages, got {stages}")
    params_list = [run.stage_params(s) for s in stages]
    n, n_stages = run.params.n_units, len(stages)
    corr, maps = stage_responses(params_list, backend, traj, noise_std, seed, run.spec, bins,
                                 place_cells=run.place_cells)
    dist = np.clip(1.0 - np.nan_to_num(corr, nan=0.0), 0.0, 2.0)
    dist = 0.5 * (dist + dist.T)
    np.fill_diagonal(dist, 0.0)
    coords, info = embed(dist, seed, method)
    coords = coords.reshape(n_stages, n, 2)
    idx = np.arange(n)
    travel_emb = np.linalg.norm(np.diff(coords, axis=0), axis=2).sum(axis=0)
    travel_corr = sum(dist[s * n + idx, (s + 1) * n + idx] for s in range(n_stages - 1))
    first_last = corr[idx, (n_stages - 1) * n + idx]
    map_r = np.stack([map_correlation(maps[s], maps[-1]) for s in range(n_stages)])
    groups = {"all": np.ones(n, bool)}
    if spatial_type is not None:
        for t in SPATIAL_TYPES:
            if np.any(spatial_type == t):
                groups[t] = spatial_type == t
    summary = {}
    for g, sel in groups.items():
        summary[g] = {
            "n": int(sel.sum()),
            "median_travel_embedding": finite_median(travel_emb[sel]),
            "median_travel_correlation": finite_median(travel_corr[sel]),
            "median_response_correlation_first_last": finite_median(first_last[sel]),
            "median_map_correlation_first_last": finite_median(map_r[0][sel]),
        }
    return {
        "stages": [int(s) for s in stages], "embedding": info,
        "coords": coords.tolist(),
        "travel_embedding": floats(travel_emb), "travel_correlation": floats(travel_corr),
        "response_correlation_first_last": floats(first_last),
        "map_correlation_to_last": [floats(r) for r in map_r],
        "summary": summary, "n_trials": int(traj.inputs.shape[0]),
        "n_steps": int(traj.inputs.shape[1]), "maps": maps,
    }
