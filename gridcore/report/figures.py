"""Figures of the paper's analyses (matplotlib Figures, no pyplot state; nothing is written here).

Each function takes results of the analyses (:mod:`gridcore.analysis.tracking`,
:mod:`gridcore.analysis.unitsummary`, :mod:`gridcore.analysis.development`,
:mod:`gridcore.analysis.compare`, and the :class:`gridcore.analysis.celltypes.CellTypes`
of the network), draws into the Figure given as ``fig=`` (or the Axes given as
``ax=`` for one-panel figures; a new Figure if neither) and returns the Figure.
:func:`gridcore.report.outputs.save_figure` writes one as PNG (200 dpi), PDF
or SVG; :func:`gridcore.report.outputs.draw_figures` draws all of an analysis.

=========================  ==============================================  ==========
function                   what it shows                                   paper
=========================  ==============================================  ==========
:func:`tracking_figure`    true path (black) and network estimate (red)    Fig. 1c
:func:`ratemap_panel`      rate maps of units with their type labels       Fig. 2, 5
:func:`grid_units`         which grid units a panel shows, best first      Fig. 2
:func:`tuning_examples`    map, direction and speed tuning of examples     Fig. 3
:func:`selectivity_figure` speed vs direction vs spatial selectivity       App. D
:func:`development_figure` t-SNE of units over training stages             Fig. 4
:func:`emergence_figure`   grid fraction and map stability over training   Fig. 4
:func:`error_correction_figure` error around the first boundary hit        Fig. 6a
:func:`stability_figure`   error per block of a long path vs a constant    Fig. 6b
:func:`comparison_figure`  rate maps, unit types, scores of several runs   Fig. 5, App. A
:func:`path_figure`        a real path vs a simulated one (--trajectory)   -
:func:`probe_figure`       response to one moving step: integration?       -
:func:`pilot_figure`       gain, error and rest output of pilot runs        -
:func:`ladder_figure`      hexagonal grid units and maps per configuration  -
=========================  ==============================================  ==========

``physical=`` (a :class:`gridcore.analysis.physical.PhysicalScale`) labels
lengths in metres, times in seconds and speeds in m/s; without it they are
in arena units and steps. ``title=`` names the run at the top.

Rate maps use viridis (low blue, high yellow, as in the paper),
``origin="lower"`` (y up), unvisited bins and the outside of the arena
white, and a colour bar that says the scale: one range shared by all maps
(``colour_scale="shared"``) or each map scaled to its own (``"unit"``).
"""

import math

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gridcore.analysis.ratemaps import spatial_bins
from gridcore.sim.arenas import Circle

__all__ = ["TYPE_COLOURS", "COLOUR_SCALES", "MAX_GRID_MAPS", "grid_units", "grid_units_title", "tracking_figure",
           "ratemap_panel", "tuning_examples",
           "selectivity_figure", "development_figure", "emergence_figure", "error_correction_figure",
           "stability_figure", "comparison_figure", "path_figure", "probe_figure", "pilot_figure",
           "ladder_figure"]

TYPE_COLOURS = {"grid": "#d62728", "border": "#1f77b4", "band": "#2ca02c",
                "irregular": "#555555", "none": "#aaaaaa"}
_FRAMED = {"grid": "red", "border": "blue", "band": "green"}   # types framed in small mosaics, colour names
COLOUR_SCALES = ("shared", "unit")
_CMAP = matplotlib.colormaps["viridis"].with_extremes(bad="white")


def _figure(fig, size):
    """``fig`` if given (checked), else a new Figure of ``size`` inches."""
    if fig is None:
        return Figure(figsize=size)
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure (e.g. plt.figure()), got {fig!r}")
    return fig


def _axes(ax, size):
    """(Figure, Axes): ``ax`` and its figure if given (checked), else a new one-panel Figure."""
    if ax is None:
        fig = Figure(figsize=size)
        return fig, fig.add_subplot(1, 1, 1)
    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes (e.g. plt.subplots()[1]), got {ax!r}")
    return ax.figure, ax


def _title(fig, title, text, **kw):
    """Figure title: the run's name (``title``), then ``text``."""
    fig.suptitle(" - ".join(t for t in (title, text) if t), **{"fontsize": 9, **kw})


def _length(physical):
    """(factor, unit) turning arena units into the units shown."""
    return (1.0, "arena units") if physical is None else (physical.metres_per_unit, "m")


def _time(physical):
    """(factor, unit) turning steps into the units shown."""
    return (1.0, "steps") if physical is None else (physical.seconds_per_step, "s")


def _squared_error(physical):
    """(factor, unit, axis label) for squared errors (arena units^2 -> the units shown)."""
    f, unit = _length(physical)
    return f * f, f"{unit}$^2$", f"squared error ({unit}$^2$)"


def _speed(physical):
    """(factor, unit) turning arena units per step into the units shown."""
    return (1.0, "arena units/step") if physical is None else (physical.speed_per_unit_step, "m/s")


def _outline(ax, arena, scale=1.0, **kw):
    """Draw the arena's walls, lengths times ``scale``."""
    style = {"color": "0.4", "lw": 0.6, **kw}
    if isinstance(arena, Circle):
        t = np.linspace(0, 2 * np.pi, 181)
        ax.plot(scale * arena.radius * np.cos(t), scale * arena.radius * np.sin(t), **style)
    else:
        v = scale * np.vstack([arena.vertices, arena.vertices[:1]])
        ax.plot(v[:, 0], v[:, 1], **style)


def _map(ax, m, binning, outline=True, vmin=None, vmax=None):
    """One rate map, on [vmin, vmax] or scaled to its own range (flat or empty maps drawn flat)."""
    if vmin is None or vmax is None:
        vmin, vmax = _range(m[None])
    ax.imshow(m, origin="lower", cmap=_CMAP, vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1e-12,
              extent=(binning.x_edges[0], binning.x_edges[-1], binning.y_edges[0], binning.y_edges[-1]),
              interpolation="nearest")
    if outline:
        _outline(ax, binning.arena)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal")
    for s in ax.spines.values():
        s.set_visible(False)


def _range(maps):
    """(min, max) over the finite values of ``maps`` ((0, 1) if there are none)."""
    ok = np.isfinite(maps)
    return (float(np.min(maps[ok])), float(np.max(maps[ok]))) if ok.any() else (0.0, 1.0)


def _type_text(types, u):
    """Short label of unit u: type (with grid symmetry), then S/D for speed/direction tuning."""
    if types is None:
        return f"unit {u}"
    t = str(types.spatial_type[u])
    if t == "grid":
        t += str(int(types.grid_symmetry[u]))
    flags = ("S" if types.speed_tuned[u] else "") + ("D" if types.direction_tuned[u] else "")
    return f"{u}: {t}" + (f" {flags}" if flags else "")


def _type_colour(types, u):
    return "k" if types is None else TYPE_COLOURS.get(str(types.spatial_type[u]), "k")


def _mosaic(fig, spec, maps, types, binning, units=None, colour_scale="unit", fontsize=6, titles=True):
    """Maps of ``units`` (default all) in a near-square grid inside ``spec``, titles coloured by type.

    Without ``titles`` (maps too small to label) a unit of a spatial type gets
    a thick frame in its type's colour instead. Returns the (vmin, vmax) of a
    shared colour scale, or None for ``"unit"``.
    """
    units = range(len(maps)) if units is None else units
    n = len(units)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = spec.subgridspec(rows, cols, wspace=0.08, hspace=0.35 if titles else 0.08)
    shared = _range(maps[list(units)]) if colour_scale == "shared" else (None, None)
    for i, u in enumerate(units):
        ax = fig.add_subplot(grid[i // cols, i % cols])
        _map(ax, maps[u], binning, vmin=shared[0], vmax=shared[1])
        if titles:
            ax.set_title(_type_text(types, u), fontsize=fontsize, pad=1.5, color=_type_colour(types, u))
        elif types is not None and str(types.spatial_type[u]) in _FRAMED:
            for spine in ax.spines.values():
                spine.set(color=_type_colour(types, u), linewidth=2.0, visible=True)
    return shared if colour_scale == "shared" else None


def _map_colourbar(fig, cax, shared, label="mean activity u"):
    """The colour bar of a mosaic: the shared range, or 'each map: its min to its max'."""
    lo, hi = shared if shared is not None else (0.0, 1.0)
    sm = matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(lo, hi if hi > lo else lo + 1e-12), _CMAP)
    cb = fig.colorbar(sm, cax=cax, orientation="horizontal")
    if shared is None:
        cb.set_ticks([0, 1], labels=["each map's min", "its max"])
        cb.set_label(f"{label}, each map scaled to its own range", fontsize=7)
    else:
        cb.set_label(f"{label} (same scale for every map)", fontsize=7)
    cb.ax.tick_params(labelsize=6.5)
    return cb


def _box_text(arena, physical):
    """The arena's bounding box in the shown units, e.g. 'box 1 m x 1 m'."""
    f, unit = _length(physical)
    xmin, ymin, xmax, ymax = arena.bounds
    return f"box {f * (xmax - xmin):.3g} x {f * (ymax - ymin):.3g} {unit}"


# The grid-unit panel shows at most this many units: beyond it the maps are too small to read.
MAX_GRID_MAPS = 64


def grid_units(types, limit=MAX_GRID_MAPS):
    """The grid units of ``types`` (CellTypes), 60-degree ones first, each set by falling score; at most ``limit``."""
    sym, scores = types.grid_symmetry, types.scores
    order = sorted(np.flatnonzero(types.spatial_type == "grid"),
                   key=lambda u: (sym[u] != 60, -scores[f"grid{sym[u]}"][u]))
    return [int(u) for u in order[:limit]]


def grid_units_title(name, types, shown):
    """Title of the grid-unit panel of run ``name``: says so when ``shown`` (from :func:`grid_units`) is not all."""
    n_grid = int(np.count_nonzero(types.spatial_type == "grid"))
    if len(shown) == n_grid:
        return f"{name}: its grid units"
    return f"{name}: the first {len(shown)} of its {n_grid} grid units"


def ratemap_panel(maps, types, arena, bins, *, units=None, colour_scale="unit", physical=None, title=None,
                  fig=None):
    """Rate maps of units in a grid of small panels, each titled with its type, and a colour bar (Fig. 2, 5).

    Parameters
    ----------
    maps : ndarray, shape (N, H, W)
        Rate maps (e.g. ``CellTypes.maps``, smoothed as classified, or
        ``Recording.rate_maps()``).
    types : CellTypes or None
        Titles ``unit: type`` coloured by type; None: ``unit u``.
    arena : Arena
    bins : int
        Spatial bins the maps were made with.
    units : sequence of int, optional
        The units shown, in order (default all).
    colour_scale : {"unit", "shared"}
        Each map scaled to its own range, or one range for all shown maps.
    physical : PhysicalScale, optional
        States the box in metres.
    title : str, optional
        The run's name.
    fig : Figure, optional

    Returns
    -------
    Figure
    """
    if colour_scale not in COLOUR_SCALES:
        raise ValueError(f"colour_scale must be one of {COLOUR_SCALES}, got {colour_scale!r}")
    units = list(range(len(maps))) if units is None else [int(u) for u in units]
    bad = [u for u in units if not 0 <= u < len(maps)]
    if bad or not units:
        raise ValueError(f"units must be a non-empty list of unit numbers in [0, {len(maps)}), got {units}")
    n = len(units)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig = _figure(fig, (max(1.05 * cols + 0.3, 3.2), 1.12 * rows + 1.3))
    height = fig.get_figheight()
    gs = fig.add_gridspec(1, 1, left=0.01, right=0.99, bottom=0.75 / height, top=1 - 0.75 / height)
    shared = _mosaic(fig, gs[0], maps, types, spatial_bins(arena, bins), units, colour_scale)
    _map_colourbar(fig, fig.add_axes((0.25, 0.3 / height, 0.5, 0.12 / height)), shared)
    text = f"rate maps ({_box_text(arena, physical)})"
    if types is not None and len(units) == len(maps):
        counts = types.counts()
        text += "\n" + ", ".join(f"{k} {counts[k]}" for k in ("grid", "border", "band", "irregular", "none",
                                                                "speed", "direction"))
    # Anchored in inches from the top: a tall panel (512 units) would otherwise run its two title lines
    # into the first row's map titles.
    _title(fig, title, text, y=1 - 0.1 / height, va="top")
    return fig


def tracking_figure(outputs, positions, arena, trials, nerr=None, *, physical=None, title=None, fig=None):
    """True path (black) and the network's estimate (red) for example trials (Fig. 1c).

    Parameters
    ----------
    outputs, positions : ndarray, shape (M, T, 2)
        Arena units.
    arena : Arena
    trials : dict of str -> int
        Panel label -> trial index (e.g. ``tracking()["example_trials"]``).
    nerr : float, optional
        Normalised error over all trials, shown in the title.
    physical : PhysicalScale, optional
        Axes in metres.
    title : str, optional
        The run's name.
    fig : Figure, optional

    Returns
    -------
    Figure
    """
    f, unit = _length(physical)
    fig = _figure(fig, (3.2 * len(trials), 3.9))
    for i, (label, m) in enumerate(trials.items()):
        ax = fig.add_subplot(1, len(trials), i + 1)
        _outline(ax, arena, color="0.6", lw=1.0, scale=f)
        ax.plot(f * positions[m, :, 0], f * positions[m, :, 1], color="k", lw=1.0, label="true path")
        ax.plot(f * outputs[m, :, 0], f * outputs[m, :, 1], color="tab:red", lw=1.0, label="network")
        ax.plot(*(f * positions[m, 0]), "o", color="k", ms=3)
        e = np.mean(np.sum((outputs[m] - positions[m]) ** 2, axis=1)) * f * f
        ax.set_title(f"trial {m} ({label} error)\nmean sq. error {e:.3g} {unit}$^2$", fontsize=8)
        ax.set_aspect("equal")
        ax.set_xlabel(f"x ({unit})", fontsize=7.5)
        ax.set_ylabel(f"y ({unit})" if i == 0 else "", fontsize=7.5)
        ax.tick_params(labelsize=6.5)
    fig.legend(*fig.axes[0].get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0.935),
               ncol=2, fontsize=7.5, frameon=False)
    text = None if nerr is None else f"held-out normalised error {nerr:.3f} (MSE / best-constant MSE)"
    _title(fig, title, text)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    return fig


def tuning_examples(examples, maps, curves, types, arena, bins, *, physical=None, title=None, fig=None):
    """Spatial map, head-direction and speed tuning of example units (Fig. 3).

    Parameters
    ----------
    examples : list of dict from :func:`gridcore.analysis.unitsummary.pick_examples`
    maps : ndarray, shape (N, H, W)
    curves : dict from :func:`gridcore.analysis.unitsummary.tuning_curves`
    types : CellTypes
    arena : Arena
    bins : int
    physical : PhysicalScale, optional
        Speeds in m/s.
    title : str, optional
        The run's name.
    fig : Figure, optional

    Returns
    -------
    Figure
    """
    binning = spatial_bins(arena, bins)
    fs, sunit = _speed(physical)
    per_row = 3
    rows = max(1, math.ceil(len(examples) / per_row))
    fig = _figure(fig, (3.6 * per_row, 1.6 * rows + 0.9))
    height = fig.get_figheight()
    gs = fig.add_gridspec(rows, per_row, left=0.02, right=0.99, bottom=0.45 / height, top=1 - 0.55 / height,
                          wspace=0.15, hspace=0.6)
    deg = np.rad2deg(curves["directions"]) % 360
    order = np.argsort(deg)
    sc = types.scores
    for i, ex in enumerate(examples):
        u = ex["unit"]
        sub = gs[i // per_row, i % per_row].subgridspec(1, 3, wspace=0.55, width_ratios=[1, 1.1, 1.1])
        ax = fig.add_subplot(sub[0])
        _map(ax, maps[u], binning)
        ax.set_title(f"{'abcdefghijklmnop'[i] if i < 16 else i}) {_type_text(types, u)}", fontsize=7,
                     loc="left", color=TYPE_COLOURS.get(ex["spatial_type"], "k"))
        ax = fig.add_subplot(sub[1])
        ax.plot(deg[order], curves["direction_curves"][u][order], color="k", lw=0.9)
        ax.set_xticks([0, 180, 360])
        ax.set_title(f"dir {sc['direction_selectivity'][u]:.2f}", fontsize=6.5)
        ax.set_ylabel("activity u", fontsize=6, labelpad=1)
        ax = fig.add_subplot(sub[2])
        ax.plot(fs * np.asarray(curves["speeds"]), curves["speed_curves"][u], ".-", color="k", lw=0.9, ms=2)
        ax.set_title(f"speed {sc['speed_selectivity'][u] / fs:.2g} per {sunit}", fontsize=6.5)
        for a in fig.axes[-2:]:
            a.tick_params(labelsize=5.5, length=2, pad=1)
            a.locator_params(axis="y", nbins=3)
        if i // per_row == rows - 1 or i + per_row >= len(examples):
            fig.axes[-2].set_xlabel("heading (deg)", fontsize=6, labelpad=1)
            fig.axes[-1].set_xlabel(f"speed ({sunit})", fontsize=6, labelpad=1)
    _title(fig, title, "rate map (own range, yellow high) | activity vs heading (selectivity = max - min) | "
                       "activity vs speed (selectivity = |slope|)", fontsize=8)
    return fig


def selectivity_figure(sel, spatial_type, *, physical=None, title=None, fig=None):
    """Speed vs direction vs spatial selectivity of every unit, coloured by type (App. D).

    Parameters
    ----------
    sel : dict from :func:`gridcore.analysis.unitsummary.selectivity`
    spatial_type : array of str, shape (N,)
    physical : PhysicalScale, optional
        Speed selectivity per m/s.
    title : str, optional
        The run's name.
    fig : Figure, optional

    Returns
    -------
    Figure
    """
    fs, sunit = _speed(physical)
    pairs = (("direction", "speed"), ("spatial", "speed"), ("spatial", "direction"))
    names = {"speed": f"speed selectivity (|slope|, per {sunit})", "direction": "direction selectivity (max - min)",
             "spatial": "spatial selectivity (lifetime sparseness)"}
    factor = {"speed": 1.0 / fs, "direction": 1.0, "spatial": 1.0}
    fig = _figure(fig, (11, 3.9))
    st = np.asarray(spatial_type)
    for i, (x, y) in enumerate(pairs):
        ax = fig.add_subplot(1, 3, i + 1)
        xs, ys = factor[x] * np.array(sel[x], dtype=float), factor[y] * np.array(sel[y], dtype=float)
        for t, c in TYPE_COLOURS.items():
            m = st == t
            if m.any():
                ax.scatter(xs[m], ys[m], s=14, color=c, label=f"{t} ({m.sum()})", alpha=0.85, lw=0)
        rho = sel["spearman"].get(f"{y}_vs_{x}") or sel["spearman"].get(f"{x}_vs_{y}")
        ax.set_title("Spearman rho = " + ("n/a" if rho["rho"] is None else f"{rho['rho']:.2f}"), fontsize=8)
        ax.set_xlabel(names[x], fontsize=8)
        ax.set_ylabel(names[y], fontsize=8)
        ax.tick_params(labelsize=7)
    fig.legend(*fig.axes[0].get_legend_handles_labels(), loc="lower center", ncol=5, fontsize=7.5,
               frameon=False, title="spatial type (units)", title_fontsize=7.5)
    _title(fig, title, "selectivity of every unit")
    fig.tight_layout(rect=(0, 0.1, 1, 0.95))
    return fig


def _stage_colours(n):
    # Early blue -> late yellow, as in the paper's Fig. 4.
    return matplotlib.colormaps["viridis"](np.linspace(0.2, 0.95, n))


def development_figure(dev, types, arena, bins, n_maps=4, *, title=None, fig=None):
    """Units over training stages in the 2-D embedding, border and grid units traced (Fig. 4).

    Parameters
    ----------
    dev : dict from :func:`gridcore.analysis.development.development` (with ``maps``)
    types : CellTypes of the final network
    arena : Arena
    bins : int
    n_maps : int
        Highlighted units whose late-stage maps are shown under each panel.
    title : str, optional
        The run's name.
    fig : Figure, optional

    Returns
    -------
    Figure
    """
    coords = np.asarray(dev["coords"])                    # (S, N, 2)
    stages = dev["stages"]
    colours = _stage_colours(len(stages))
    names = ["early", "intermediate", "late"] if len(stages) == 3 else [f"stage {i}" for i in range(len(stages))]
    binning = spatial_bins(arena, bins)
    fig = _figure(fig, (12, 6.2))
    gs = fig.add_gridspec(2, 3, height_ratios=[3.2, 1], left=0.05, right=0.98, top=0.88, bottom=0.1,
                          hspace=0.3, wspace=0.28)
    travel = np.array(dev["travel_correlation"], dtype=float)
    for col, kind in enumerate(("border", "grid")):
        ax = fig.add_subplot(gs[0, col])
        for s in range(len(stages)):
            ax.scatter(coords[s, :, 0], coords[s, :, 1], s=9, color=colours[s],
                       label=f"{names[s]} (iter {stages[s]})", lw=0)
        units = np.flatnonzero(types.spatial_type == kind)
        for u in units:
            ax.plot(coords[:, u, 0], coords[:, u, 1], "-", color=TYPE_COLOURS[kind], lw=0.9, alpha=0.9)
            ax.plot(coords[-1, u, 0], coords[-1, u, 1], "o", mfc="none", mec=TYPE_COLOURS[kind], ms=5)
        ax.set_title(f"{'ab'[col]}) {kind} units of the final network traced ({len(units)})", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if col == 0:
            fig.legend(*ax.get_legend_handles_labels(), fontsize=7.5, loc="lower center", bbox_to_anchor=(0.36, 0.0),
                       ncol=len(stages), frameon=False, title="training stage", title_fontsize=7.5)
        shown = units[np.argsort(travel[units])][:n_maps] if kind == "border" else \
            units[np.argsort(-travel[units])][:n_maps]
        sub = gs[1, col].subgridspec(1, n_maps, wspace=0.1)
        for i, u in enumerate(shown):
            a = fig.add_subplot(sub[i])
            _map(a, types.maps[u], binning)
            a.set_title(f"unit {u}", fontsize=6.5, pad=1.5)
    ax = fig.add_subplot(gs[:, 2])
    groups = [t for t in ("border", "grid", "band", "irregular", "none") if np.any(types.spatial_type == t)]
    rng = np.random.default_rng(0)   # jitter only
    for i, t in enumerate(groups):
        v = travel[types.spatial_type == t]
        ax.scatter(i + rng.uniform(-0.18, 0.18, len(v)), v, s=10, color=TYPE_COLOURS[t], lw=0)
        ax.plot([i - 0.3, i + 0.3], [np.median(v)] * 2, color="k", lw=1.5)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, fontsize=8)
    ax.set_ylabel("distance travelled (sum of 1 - r between stages)", fontsize=8)
    ax.set_title("c) distance travelled per unit (bar: median)", fontsize=9)
    ax.tick_params(labelsize=7)
    emb = dev["embedding"]
    _title(fig, title, f"development: {emb['method']} embedding of unit responses (distance 1 - correlation)"
           + (f"  [{emb['note']}]" if emb["note"] else ""))
    return fig


def _iteration_axis(ax, x, iterations, min_gap=0.06):
    """Training iterations on a top axis at the stages' ``x``; labels closer than ``min_gap`` of the width left out."""
    top = ax.secondary_xaxis("top")
    lo, hi = ax.get_xlim()
    shown, last = [], -np.inf
    for xi, it in zip(x, iterations):
        if (xi - last) >= min_gap * (hi - lo):
            shown.append((xi, it))
            last = xi
    top.set_xticks([xi for xi, _ in shown], [f"{it:,}" for _, it in shown], fontsize=6.5)
    top.set_xlabel("training iteration", fontsize=7.5)
    return top


def emergence_figure(em, *, title=None, fig=None):
    """Unit types over training: the grid fraction, and how early each unit's map settles (C5, Fig. 4).

    a) The fraction of units classified as grid units and the fraction
    whose grid60 score exceeds 0.5 (and each other level of the result),
    against training time (hours; iterations on the top axis). b) For the
    units that are border units, grid units or neither at the last stage:
    the median correlation of each unit's rate map with its last-stage map
    (solid) and the fraction of them that already had that type (dashed).

    Parameters
    ----------
    em : dict from :func:`gridcore.analysis.emergence.emergence`
    title : str, optional
        The run's name.
    fig : Figure, optional

    Returns
    -------
    Figure
    """
    stages = em["stages"]
    its = [s["iteration"] for s in stages]
    hours = [s["training_hours"] for s in stages]
    timed = all(h is not None for h in hours)
    x = np.asarray(hours if timed else its, float)
    xlabel = "training time (h)" if timed else "training iteration (the log lacks some iterations' times)"
    fig = _figure(fig, (10, 4.4))
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(x, [s["grid_fraction"] for s in stages], "o-", color=TYPE_COLOURS["grid"], ms=4, lw=1.5,
            label="grid units (classifier)")
    ax.plot(x, [s["grid_symmetry"]["n_grid60"] / s["n_units"] for s in stages], "^-", color=TYPE_COLOURS["grid"],
            ms=4, lw=1, alpha=0.6, label="of them 60-degree (hexagonal)")
    greys = ["0.55", "0.15", "0.35", "0.75"]
    for level, grey in zip(em["settings"]["grid60_levels"], greys):
        key = f"{level:g}"
        ax.plot(x, [s["grid_scores"]["fraction_grid60_above"][key] for s in stages], "s--", ms=3, lw=1,
                color=grey, label=f"grid60 score > {key}")
    n = stages[-1]["n_units"]
    ax.set_ylim(bottom=0)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(f"fraction of the {n} units", fontsize=8)
    ax.set_title(f"a) grid units over training ({em['settings']['n_samples']:,} steps, "
                 f"{em['settings']['n_shuffles']} shuffles per stage)", fontsize=8.5, pad=26)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
    if timed:
        _iteration_axis(ax, x, its)
    ax = fig.add_subplot(1, 2, 2)
    colours = {"border": TYPE_COLOURS["border"], "grid": TYPE_COLOURS["grid"], "rest": TYPE_COLOURS["irregular"]}
    names = {"border": "border units", "grid": "grid units", "rest": "other units"}
    for g in ("border", "grid", "rest"):
        k = stages[-1]["c5"][g]["n"]
        if k == 0:
            ax.plot([], [], color=colours[g], lw=1.5, label=f"{names[g]}: none at the last stage")
            continue
        r = [s["c5"][g]["median_map_correlation_to_last"] for s in stages]
        same = [s["c5"][g]["fraction_same_type"] for s in stages]
        ax.plot(x, np.array(r, dtype=float), "o-", color=colours[g], ms=4, lw=1.5,
                label=f"{names[g]} at the last stage ({k}): median map r")
        if g != "rest":
            ax.plot(x, np.array(same, dtype=float), "^--", color=colours[g], ms=3.5, lw=1, alpha=0.8,
                    label=f"{names[g]}: fraction already of that type")
    ax.axhline(0, color="0.7", lw=0.6)
    ax.set_ylim(min(-0.05, ax.get_ylim()[0]), 1.05)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel("map correlation with the last stage / fraction", fontsize=8)
    ax.set_title("b) C5: do the last stage's units settle early?", fontsize=8.5, pad=26)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1)
    if timed:
        _iteration_axis(ax, x, its)
    last = stages[-1]
    _title(fig, title, f"emergence over training: last stage iteration {last['iteration']:,} ({last['source']})")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def error_correction_figure(ec, *, physical=None, title=None, fig=None):
    """Error aligned to the first boundary interaction, by later interactions (Fig. 6a).

    Parameters
    ----------
    ec : dict from :func:`gridcore.analysis.tracking.error_correction`
    physical : PhysicalScale, optional
        Times in seconds, errors in m^2.
    title : str, optional
        The run's name.
    fig : Figure, optional

    Returns
    -------
    Figure
    """
    fe, eunit, err = _squared_error(physical)
    ft, tunit = _time(physical)
    fig = _figure(fig, (10, 4.6))
    ax = fig.add_subplot(1, 2, 1)
    off = ft * np.asarray(ec["offsets"])
    colours = matplotlib.colormaps["plasma"](np.linspace(0.1, 0.8, len(ec["groups"])))
    growth = ec["no_interaction"]
    if growth["aligned_mean"] is not None:
        ax.plot(off, fe * np.asarray(growth["aligned_mean"], float), color="tab:blue", lw=1.5,
                label=f"no boundary interaction ({growth['n_trials']} trials, at step {growth['t_ref']})")
    for g, c in zip(ec["groups"], colours):
        if g["mean"] is None:
            continue
        lo, hi = g["range"]
        name = f"{lo}" if lo == hi else f"{lo} to {hi}"
        mean, sem = fe * np.array(g["mean"], float), fe * np.array(g["sem"], float)
        ax.plot(off, mean, color=c, lw=1.5, label=f"{name} more ({g['n_trials']} trials)")
        ax.fill_between(off, mean - sem, mean + sem, color=c, alpha=0.2, lw=0)
    ax.axvline(0, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel(f"time relative to the first boundary interaction ({tunit})", fontsize=8)
    ax.set_ylabel(err, fontsize=8)
    ax.set_title(f"a) error correction ({ec['n_aligned']} trials)", fontsize=8.5)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6.5, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2,
                  title=f"boundary interactions in the next {ec['window']} steps", title_fontsize=6.5)
    else:
        ax.text(0.5, 0.5, f"no trial has a full window of +-{ec['window']} steps around its first "
                "interaction", ha="center", va="center", transform=ax.transAxes, fontsize=8)
    ax.tick_params(labelsize=7)
    ax = fig.add_subplot(1, 2, 2)
    if growth["mean_by_step"] is not None:
        by = fe * np.array(growth["mean_by_step"], float)
        t = np.arange(len(by))
        ax.plot(ft * t, by, color="tab:blue", lw=1.2, label="trials without interaction")
        ax.plot(ft * t, fe * (growth["intercept"] + growth["slope"] * t), color="k", lw=0.8, ls="--",
                label=f"line: slope {fe * growth['slope'] / ft:.2e} {eunit}/{tunit}, "
                      f"R$^2$ {growth['r2']:.2f}")
        ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1)
    else:
        ax.text(0.5, 0.5, "every trial had a boundary interaction", ha="center", va="center",
                transform=ax.transAxes, fontsize=8)
    ax.set_xlabel(f"time in the trial ({tunit})", fontsize=8)
    ax.set_ylabel(err, fontsize=8)
    ax.set_title(f"b) error growth without boundary interactions ({growth['n_trials']} trials)", fontsize=8.5)
    ax.tick_params(labelsize=7)
    _title(fig, title, "error correction at walls")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def stability_figure(st, *, physical=None, title=None, ax=None):
    """Error per block of steps along long paths vs the best constant (Fig. 6b).

    The line is the mean error per block; the band its sd over the block's
    steps (the squared error of single steps is skewed and spread); the bars,
    with several paths, the sd of the paths' block means.

    Parameters
    ----------
    st : dict from :func:`gridcore.analysis.tracking.stability` / ``long_path``
    physical : PhysicalScale, optional
        Time in hours, errors in m^2.
    title : str, optional
        The run's name.
    ax : Axes, optional

    Returns
    -------
    Figure
    """
    fe, eunit, err = _squared_error(physical)
    ft, tunit = _time(physical)
    if physical is not None:
        ft, tunit = ft / 3600.0, "h"
    own = ax is None
    fig, ax = _axes(ax, (6.4, 4.4))
    x = ft * (np.asarray(st["block_end"], float) - st["block_steps"] / 2)
    mean, sd = fe * np.array(st["error_mean"], float), fe * np.array(st["error_sd"], float)
    ax.fill_between(x, np.maximum(mean - sd, 0), mean + sd, color="0.85", lw=0,
                    label="sd over the block's steps")
    if st["n_paths"] > 1:
        ax.errorbar(x, mean, yerr=fe * np.array(st["path_sd"], float), fmt="none", ecolor="k",
                    elinewidth=0.6, capsize=0, label=f"sd over the {st['n_paths']} paths' block means")
    ax.plot(x, mean, "o-", color="k", ms=2.5, lw=1, label=f"network: mean per {st['block_steps']:,} steps")
    ax.plot(x, fe * np.asarray(st["constant_mean"], float), color="tab:red", lw=1.5,
            label="best constant output")
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f"time on the path ({tunit})" if physical is not None else "step", fontsize=8)
    ax.set_ylabel(err, fontsize=8)
    if st.get("diverged_at_step") is not None:
        summary = f"activity overflowed at step {st['diverged_at_step']:,}"
    else:
        summary = f"error / constant = {st['ratio']:.3f}"
    slope = ("slope n/a" if st["slope_per_million_steps"] is None or st["slope_se"] is None else
             f"slope {fe * st['slope_per_million_steps']:.2g} ± {fe * st['slope_se']:.2g} {eunit} per 10$^6$ steps")
    ax.set_title((f"{title}: " if title else "") + f"{st['n_paths']} path(s) of {st['n_steps']:,} steps: {summary},\n"
                 + slope, fontsize=8)
    ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    ax.tick_params(labelsize=7)
    if own:
        fig.tight_layout()
    return fig


def comparison_figure(comparison, maps, types, arenas, bins, *, title=None, fig=None):
    """Rate maps, unit types and scores of several runs side by side (C6: Fig. 5, App. A).

    Below the maps: the fraction of units of each type, then one panel per
    grid60 / grid90 / border / band score with every unit's score (filled
    where it beats the unit's own null) and the number that do, so runs
    without any unit of a type still compare.

    Parameters
    ----------
    comparison : dict from :func:`gridcore.analysis.compare.compare_runs`
    maps : list of ndarray (N_r, H, W), one per run
    types : list of CellTypes, one per run
    arenas : list of Arena, one per run
    bins : int
    title : str, optional
        What is compared.
    fig : Figure, optional

    Returns
    -------
    Figure
    """
    runs = comparison["runs"]
    k = len(runs)
    colours = [matplotlib.colormaps["tab10"](i) for i in range(k)]
    # At most 4 runs' maps per row, so that many runs stay legible.
    cols = min(k, 4)
    rows = -(-k // cols)
    height = 4.4 * rows + 3.4                                   # inches
    fig = _figure(fig, (max(4.2 * cols, 11.0), height))
    top = 1 - (1.05 if title else 0.75) / height
    gs = fig.add_gridspec(rows + 1, cols, height_ratios=[4.2] * rows + [1.8], left=0.05, right=0.98,
                          top=top, bottom=1.1 / height, hspace=0.3, wspace=0.12)
    for i, (r, m, t, a) in enumerate(zip(runs, maps, types, arenas)):
        cell = gs[i // cols, i % cols]
        _mosaic(fig, cell, m, t, spatial_bins(a, bins), titles=False)
        box = cell.get_position(fig)
        x, y = (box.x0 + box.x1) / 2, box.y1 + 0.7 / height
        diff = ", ".join(f"{key}={val[1]}" for key, val in r["differs"].items()) or "reference"
        fig.text(x, y, f"{r['label']}", ha="center", va="top", fontsize=9, weight="bold")
        fig.text(x, y - 0.2 / height, f"{diff}\nnormalised error {r['normalised_error']:.3f}",
                 ha="center", va="top", fontsize=7)
    bottom = gs[rows, :].subgridspec(1, 5, width_ratios=[1.6, 1, 1, 1, 1], wspace=0.35)
    ax = fig.add_subplot(bottom[0])
    kinds = ("grid", "border", "band", "irregular", "none")
    width = 0.8 / k
    for i, r in enumerate(runs):
        ax.bar(np.arange(len(kinds)) + (i - (k - 1) / 2) * width, [r["fractions"][t] for t in kinds],
               width, label=r["label"], color=colours[i])
    ax.set_xticks(range(len(kinds)))
    ax.set_xticklabels(kinds, fontsize=7)
    ax.set_ylabel("fraction of units", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=6, frameon=False, loc="upper left")
    ax.tick_params(labelsize=7)
    jitter = np.random.default_rng(0).uniform(-0.25, 0.25, size=max(len(t.spatial_type) for t in types))
    passes = [t.passes() for t in types]
    for j, score in enumerate(("grid60", "grid90", "border", "band")):
        ax = fig.add_subplot(bottom[j + 1])
        for i, t in enumerate(types):
            v, ok = t.scores[score], passes[i][score]
            x = i + jitter[:len(v)]
            ax.scatter(x[~ok], v[~ok], s=5, facecolors="none", edgecolors=colours[i], linewidths=0.5)
            ax.scatter(x[ok], v[ok], s=5, color=colours[i])
            ax.text(i, 1.0, f"{int(ok.sum())}", transform=ax.get_xaxis_transform(), ha="center",
                    va="bottom", fontsize=7)
        ax.set_xticks(range(k))
        ax.set_xticklabels([r["label"] for r in runs], rotation=30, ha="right", fontsize=6.5)
        for tick, c in zip(ax.get_xticklabels(), colours):
            tick.set_color(c)
        ax.set_xlim(-0.6, k - 0.4)
        ax.set_title(f"{score} score", fontsize=8, pad=10)
        ax.tick_params(axis="y", labelsize=7)
    frames = ", ".join(f"{k} {c}" for k, c in _FRAMED.items())
    fig.text(0.99, 0.01, f"maps: mean activity, each scaled to its own range (yellow high), framed by unit type "
             f"({frames}); scores: one dot per unit, filled where it beats its own shuffle null; number above: "
             "units that beat it", ha="right", va="bottom", fontsize=7)
    if title:
        _title(fig, title, None, y=1 - 0.15 / height, va="top")
    return fig


def path_figure(section, traces, arena, *, physical=None, title=None, fig=None):
    """The network along a real path and along simulated paths (``--trajectory``).

    a) squared error per block of real time along the whole real path and a
    simulated path of the same length, the best-constant error dashed; b, c)
    true path (black) and read-out (red) over the first seconds of each;
    d) error by step of the trials of the training length cut from the real
    path vs simulated trials; e) the distribution of the speed per step.

    Parameters
    ----------
    section : dict
        ``metrics["trajectory"]`` (from :func:`gridcore.analysis.pipeline.real_path_step`).
    traces : dict
        ``"real"`` and ``"simulated"`` -> ``(outputs (W, 2), positions (W, 2),
        speed (T,))``: the first W steps' read-out and true positions (arena
        units) and every step's speed (arena units per step).
    arena : Arena
    physical : PhysicalScale, optional
        Errors in m^2, speeds in m/s (times are the path's seconds either way).
    title : str, optional
        The run's name.
    fig : Figure, optional

    Returns
    -------
    Figure
    """
    fl, lunit = _length(physical)
    fe, _, err = _squared_error(physical)
    fs, sunit = _speed(physical)
    colours = {"real": "tab:orange", "simulated": "tab:blue"}
    fig = _figure(fig, (11, 7.4))
    gs = fig.add_gridspec(2, 3, width_ratios=[1.5, 1, 1], hspace=0.42, wspace=0.25, top=0.9, bottom=0.08)
    ax = fig.add_subplot(gs[0, 0])
    for name in ("real", "simulated"):
        st = section[name]["over_time"]
        x = np.asarray(st["block_end_s"]) - 0.5 * section["block_s"]
        nerr = section[name]["tracking"]["normalised_error"]
        ax.plot(x, fe * np.asarray(st["error_mean"], float), "o-", ms=2.5, lw=1, color=colours[name],
                label=f"{name} (normalised error {nerr:.3f})")
        ax.plot(x, fe * np.asarray(st["constant_mean"], float), "--", lw=1, color=colours[name])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("time on the path (s)", fontsize=8)
    ax.set_ylabel(err, fontsize=8)
    ax.set_title(f"a) one long trial: error per {section['block_s']:.3g} s; dashed: best constant",
                 fontsize=8.5)
    ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    ax.tick_params(labelsize=7)
    for k, name in enumerate(("real", "simulated")):
        y, p, _ = traces[name]
        ax = fig.add_subplot(gs[0, 1 + k])
        _outline(ax, arena, color="0.6", lw=1.0, scale=fl)
        ax.plot(fl * p[:, 0], fl * p[:, 1], color="k", lw=0.8, label="true path")
        ax.plot(fl * y[:, 0], fl * y[:, 1], color="tab:red", lw=0.8, label="network")
        ax.set_title(f"{'bc'[k]}) {name} path, first {len(p) * section['dt_s']:.0f} s", fontsize=8.5)
        ax.set_aspect("equal")
        ax.set_xlabel(f"x ({lunit})", fontsize=7)
        ax.set_ylabel(f"y ({lunit})", fontsize=7)
        ax.tick_params(labelsize=6.5)
        if k == 1:
            fig.legend(*ax.get_legend_handles_labels(), fontsize=7.5, loc="upper center",
                       bbox_to_anchor=(0.77, 0.955), ncol=2, frameon=False)
    ax = fig.add_subplot(gs[1, 0])
    for name in ("real", "simulated"):
        t = section[name]["trials"]
        by = fe * np.asarray(t["squared_error_by_step"], float)
        ax.plot(np.arange(len(by)) * section["dt_s"], by, lw=1.2, color=colours[name],
                label=f"{name}: {t['n_trials']} trials, normalised error {t['normalised_error']:.3f}")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("time in the trial, after the lead-in (s)", fontsize=8)
    ax.set_ylabel(err, fontsize=8)
    ax.set_title("d) trials of the training length: mean error by step", fontsize=8.5)
    ax.legend(fontsize=7, frameon=False)
    ax.tick_params(labelsize=7)
    ax = fig.add_subplot(gs[1, 1:])
    top = fs * max(float(np.max(traces[n][2])) for n in traces)
    edges = np.linspace(0.0, top if top > 0 else 1.0, 61)
    for name in ("real", "simulated"):
        s = fs * np.asarray(traces[name][2])
        st = section[name]["statistics"]
        ax.hist(s, bins=edges, weights=np.full(len(s), 1.0 / len(s)), histtype="step", lw=1.2,
                color=colours[name], label=f"{name}: mean {fs * st['speed']['mean']:.3g} {sunit}, "
                f"{100 * st['fraction_zero_speed']:.0f}% zero, {100 * st['fraction_near_wall']:.0f}% "
                "near a wall")
    ax.set_yscale("log")
    ax.set_xlabel(f"speed ({sunit})", fontsize=8)
    ax.set_ylabel("fraction of steps", fontsize=8)
    ax.set_title("e) speed per step", fontsize=8.5)
    ax.legend(fontsize=7, frameon=False)
    ax.tick_params(labelsize=7)
    _title(fig, title, f"the network on the {section['source']} path and on a simulated one")
    return fig


def probe_figure(probe, *, title=None, fig=None):
    """Step response (:func:`gridcore.analysis.probes.run_probe`): does the network integrate?

    a) Output displacement per unit step length for each heading (dots, one
    colour per speed) against an integrator's unit circle; b) the output
    after the same trial without the step, per heading; c) median gain and
    median output at rest over training.

    Parameters
    ----------
    probe : dict from :func:`gridcore.analysis.probes.run_probe`
    title : str, optional
        The run's name.
    fig : Figure, optional

    Returns
    -------
    Figure
    """
    f = probe["final"]
    fig = _figure(fig, (11, 4.4))
    hd = np.asarray(f["headings"])
    ax = fig.add_subplot(1, 3, 1, aspect="equal")
    t = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(t), np.sin(t), color="0.6", lw=1, ls="--", label="integrator")
    colours = matplotlib.colormaps["plasma"](np.linspace(0.1, 0.8, len(f["speeds"])))
    for s, resp, c in zip(f["speeds"], f["response"], colours):
        r = np.asarray(resp) / s
        ax.plot(r[:, 0], r[:, 1], ".", color=c, ms=4, label=f"step {s:.3g}")
    ax.set_title("a) output moved by one step / its length", fontsize=8.5)
    ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    ax.set_xlabel("x displacement / step length", fontsize=8)
    ax.set_ylabel("y displacement / step length", fontsize=8)

    ax = fig.add_subplot(1, 3, 2)
    rest = np.asarray(f["rest_output"])
    ax.plot(np.rad2deg(hd), np.hypot(rest[:, 0], rest[:, 1]), color="k", lw=1.5, label="|output|")
    ax2 = ax.twinx()
    ax2.plot(np.rad2deg(hd), np.rad2deg(np.angle(np.exp(1j * (np.arctan2(rest[:, 1], rest[:, 0]) - hd)))),
             color="tab:red", lw=1, label="direction - heading")
    ax2.set_ylim(-180, 180)
    ax2.set_ylabel("output direction - heading (deg)", fontsize=8, color="tab:red")
    ax.set_xlabel("heading held (deg)", fontsize=8)
    ax.set_ylabel(f"|output| after {f['settle'] + 1 + f['after']} steps at rest", fontsize=8)
    ax.set_title("b) output without any step (integrator: 0)", fontsize=8.5)

    ax = fig.add_subplot(1, 3, 3)
    over = probe["over_training"]
    its = [max(o["iteration"], 1) for o in over]
    mid = len(f["speeds"]) // 2
    ax.plot(its, [o["median_gain"][mid] for o in over], "o-", color="tab:blue", ms=3,
            label=f"median gain (step {f['speeds'][mid]:.3g})")
    ax.plot(its, [o["median_rest_output"] for o in over], "s-", color="k", ms=3, label="median |output| at rest")
    ax.axhline(1.0, color="0.6", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("training iteration (0 shown at 1)", fontsize=8)
    ax.set_title("c) over training", fontsize=8.5)
    ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, frameon=False)
    for a in fig.axes:
        a.tick_params(labelsize=7)
    _title(fig, title, "response to one moving step: does the network integrate?")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def pilot_figure(rows, *, fig=None):
    """One bar per pilot run (:func:`gridcore.cli.reproduce.pilot`): does it integrate, and how well?

    ``rows`` maps run names to dicts with ``gain`` (output moved per unit
    step, integrator 1), ``nerr`` (held-out normalised error) and
    ``rest_output`` (output after a trial at rest, in half-sides; an
    integrator 0). The paper's run is the first row. Returns the Figure
    (drawn into ``fig`` if given).
    """
    names = list(rows)
    y = np.arange(len(names))[::-1]
    panels = [("gain", "a) step gain (integrator: 1)", 1.0),
              ("nerr", "b) held-out normalised error", None),
              ("rest_output", "c) output at rest / half side (integrator: 0)", 0.0)]
    fig = _figure(fig, (11, 0.35 * len(names) + 1.2))
    for i, (key, title, ideal) in enumerate(panels):
        ax = fig.add_subplot(1, 3, i + 1)
        vals = [rows[n][key] for n in names]
        ax.barh(y, vals, color=["0.35"] + ["tab:blue"] * (len(names) - 1), height=0.7)
        if ideal is not None:
            ax.axvline(ideal, color="0.6", lw=0.8, ls="--")
        ax.set_yticks(y, names if i == 0 else [""] * len(names), fontsize=7.5)
        ax.set_title(title, fontsize=8.5)
        ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    return fig


def ladder_figure(records, maps, binnings, *, title=None, fig=None):
    """The ingredient ladder: hexagonal grid units per configuration, and the best grid maps of each.

    a) The fraction of units that are hexagonal grid units (grid units of
    60-degree symmetry), one dot per seed, with the mean and the range over
    the seeds, configurations in the ladder's order. b) One row per
    configuration: the rate maps of its example units (one seed's highest
    grid60 scores, the seed named in the row's label), each titled with its
    unit, score and type.

    Parameters
    ----------
    records : list of dict
        :func:`gridcore.sweep.ladder.ladder_records`: ``point``, ``runs``
        (``seed``, ``hexagonal_fraction``), ``missing``,
        ``hexagonal_fraction`` (``mean``, ``min``, ``max``) and ``examples``
        (``seed``, ``units``, ``grid60``, ``type``, ``grid_symmetry``; or None).
    maps : list of (ndarray, shape (K, H, W)) or None
        Per record, the maps of its example units (None: none to show).
    binnings : list of SpatialBins or None
        Per record, the maps' bins (:func:`gridcore.analysis.ratemaps.spatial_bins`).
    title : str, optional
        The sweep's name.
    fig : Figure, optional

    Returns
    -------
    Figure
    """
    if not (len(records) == len(maps) == len(binnings)) or not records:
        raise ValueError(f"records, maps and binnings must be non-empty lists of one entry per configuration, got "
                         f"{len(records)}, {len(maps)} and {len(binnings)}")
    k = len(records)
    cols = max([len(m) for m in maps if m is not None], default=1)
    # Inches from the top: title 0.55, panel a 2.2, its tick labels and b's title 1.15, a row of maps 1.2
    # each, the colour bar 0.8.
    a_top, a_bottom, b_top = 0.55, 2.75, 3.9
    height = b_top + 1.2 * k + 0.8
    fig = _figure(fig, (max(1.1 * cols + 1.6, 0.9 * k + 2.0, 6.0), height))
    ax = fig.add_subplot(fig.add_gridspec(1, 1, left=0.1, right=0.98, top=1 - a_top / height,
                                          bottom=1 - a_bottom / height)[0])
    for i, r in enumerate(records):
        fractions = [run["hexagonal_fraction"] for run in r["runs"]]
        if not fractions:
            ax.text(i, 0.0, "no analysed run", rotation=90, ha="center", va="bottom", fontsize=7, color="0.4")
            continue
        x = i + 0.1 * np.linspace(-1, 1, len(fractions)) * (len(fractions) > 1)
        ax.scatter(x, fractions, s=14, color=TYPE_COLOURS["grid"], alpha=0.75, zorder=3, label="one seed")
        h = r["hexagonal_fraction"]
        ax.errorbar(i + 0.22, h["mean"], yerr=[[h["mean"] - h["min"]], [h["max"] - h["mean"]]], fmt="_", ms=10,
                    capsize=3, color="k", lw=1, label="mean and range (min to max) over seeds")
    tilt = {"rotation": 25, "ha": "right"} if k > 6 else {}        # long ladders: slanted names
    ax.set_xticks(range(k), [f"{r['point']}\n{len(r['seeds'])} of {len(r['seeds']) + len(r['missing'])} seeds"
                             for r in records], fontsize=7, **tilt)
    ax.set_xlim(-0.6, k - 0.4)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("hexagonal grid units\n(fraction of units)", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    handles, labels = ax.get_legend_handles_labels()
    once = dict(zip(labels, handles))                             # one entry per kind, not per configuration
    if once:
        ax.legend(once.values(), once.keys(), fontsize=7, frameon=False, loc="upper right")
    ax.set_title("a) grid units of 60-degree symmetry (classifier), per configuration", fontsize=8.5)
    rows = fig.add_gridspec(k, cols + 1, width_ratios=[1.4] + [1.0] * cols, left=0.02, right=0.98,
                            top=1 - b_top / height, bottom=0.8 / height, hspace=0.3, wspace=0.08)
    for i, (r, m, b) in enumerate(zip(records, maps, binnings)):
        ex = r["examples"]
        label = fig.add_subplot(rows[i, 0])
        label.axis("off")
        if ex is None:     # no run, or only runs kept from an earlier ladder without their maps
            where = "maps not kept" if r["runs"] else "no analysed run"
        else:
            where = f"seed {ex['seed']}" + ("" if ex["units"] else "\nno unit has a grid60 score")
        label.text(1.0, 0.5, f"{r['point']}\n{where}", ha="right", va="center", fontsize=7.5,
                   transform=label.transAxes)
        if m is None:
            continue
        for j, (u, g60, t, sym) in enumerate(zip(ex["units"], ex["grid60"], ex["type"], ex["grid_symmetry"])):
            a = fig.add_subplot(rows[i, j + 1])
            _map(a, m[j], b)
            a.set_title(f"{u}: {g60:.2f} {t}{sym if t == 'grid' else ''}", fontsize=6, pad=1.5,
                        color=TYPE_COLOURS.get(t, "k"))
    fig.text(0.5, 1 - (b_top - 0.3) / height, "b) rate maps of one seed's units with the highest grid60 "
             "scores (title: unit: grid60 score, type)", fontsize=8.5, ha="center", va="bottom")
    _map_colourbar(fig, fig.add_axes((0.3, 0.25 / height, 0.4, 0.12 / height)), None)
    _title(fig, title, "ingredient ladder", y=1 - 0.1 / height, va="top")
    return fig
