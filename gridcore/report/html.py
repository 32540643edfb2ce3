"""``report.html``: the analysis figures with a caption each and the main numbers, offline.

The page links the PNGs next to it by relative names and has no external
assets (inline CSS, no scripts), so the ``analysis/`` folder can be copied
or opened anywhere. Everything shown comes from ``metrics.json``.
"""

import html
import os

from gridcore.analysis.probes import step_gain
from gridcore.report.figures import MAX_GRID_MAPS
from gridcore.report.training import training_text
from gridcore.train.heldout import MAX_ERROR_RATIO, MIN_STEP_GAIN

__all__ = ["caption", "summary_rows", "write_report"]

_ORDER = ("tracking", "probe", "ratemaps", "grid_maps", "tuning", "selectivity", "development", "error_correction",
          "stability", "comparison", "path_error", "path_maps")
_TITLES = {"tracking": "C1 Tracking (Fig. 1c)",
           "probe": "C1 Does the network integrate? Response to one moving step (ours)",
           "ratemaps": "C2 Rate maps of all units (Figs. 2, 5)",
           "grid_maps": "C2 Rate maps of the grid units",
           "tuning": "C3 Tuning of example units (Fig. 3)",
           "selectivity": "C4 Speed, direction and spatial selectivity (App. D)",
           "development": "C5 Development during training (Fig. 4)",
           "error_correction": "C7 Error correction at the boundary (Fig. 6a)",
           "stability": "C8 Stability over long paths (Fig. 6b)",
           "comparison": "C6 Comparison of runs (Fig. 5, App. A)",
           "path_error": "Real path: tracking along it vs a simulated path",
           "path_maps": "Real path: rate maps and unit types vs a simulated path"}


def _g(v, fmt=".3g"):
    """A number for text, or "n/a"."""
    return "n/a" if v is None else format(v, fmt)


def _diverged(st):
    """The sentence on a long path's divergence, or nothing."""
    k = st.get("diverged_at_step")
    return "" if k is None else (f"The network's activity overflowed at step {k:,}: the error is infinite from "
                                 "there on and the paths were not run further. ")


def _readout(m):
    """What the tracking figures show as the network's estimate, from the run's model."""
    model = m.get("config", {}).get("model") or {}
    if model.get("readout") == "place-cells":
        return f"decoded place-cell read-out ({model.get('n_place_cells')} cells, mean centre of the 3 most active)"
    return "linear read-out"


def _lead_in(steps, what):
    """How a real path (or its pieces) begins: a lead-in from the centre, or none (encoded initial state)."""
    if steps:
        return f"{what} a {steps}-step lead-in from the centre"
    return "starting where it is (the encoded initial state gives the start)"


def caption(key, m):
    """Short caption of figure ``key`` from the metrics ``m`` (what is shown, how, the main numbers)."""
    t = m["tracking"]
    if key == "tracking":
        return (f"True path (black) and the network's {_readout(m)} (red) on three held-out trials, "
                f"at the 25th, 50th and 75th percentile of the per-trial error. Over the run's {t['n_trials']} "
                f"held-out trials of {t['n_steps']} steps (those of final_metrics.json) the normalised "
                f"error (MSE / best-constant MSE) is "
                f"{t['normalised_error']:.3f} (squared error {t['squared_error']:.3g} vs "
                f"{t['best_constant_error']:.3g} arena units^2); an integrator that ignores speed (mean "
                f"speed along the heading) gets {t['heading_baseline_normalised_error']:.3f}.")
    if key == "probe":
        f = m["probe"]["final"]
        s = f["summary"]
        return (f"The network at rest at the centre, heading held, takes one moving step on step "
                f"{f['settle']} and rests {f['after']} more steps (noise off). a) How far the output moved "
                f"because of the step, divided by the step length: an integrator gives the unit circle. "
                f"Median gain " + ", ".join(f"{g:.3g} (step {v:.3g})" for g, v in zip(s["median_gain"],
                                                                                  s["speeds"]))
                + f"; median |direction error| {s['median_abs_angle_error_deg'][len(s['speeds']) // 2]:.1f} "
                f"deg. b) The output after the same trial without the step: median "
                f"{s['median_rest_output']:.3g} arena units, at a median "
                f"{s['median_abs_rest_angle_to_heading_deg']:.1f} deg from the heading (a network that "
                f"guesses from the heading alone moves along it). c) The same medians at every snapshot.")
    if key == "ratemaps":
        ct = m["celltypes"]
        c, cs = ct["counts"], ct["settings"]
        return (f"Mean activity per spatial bin of every unit over the held-out trials ({cs['bins']} bins, "
                f"Gaussian smoothing {cs['smooth_sigma_bins']} bin), each map scaled to its own range "
                f"(yellow high). Titles: unit, type (grid60/grid90: the winning symmetry), S/D: speed/"
                f"direction tuned. Types pass the {cs['percentile']:g}th percentile of {cs['n_shuffles']} "
                f"circular-shift nulls per unit; reported grid score: {cs['grid_method']}. Counts: "
                + ", ".join(f"{k} {v}" for k, v in c.items()) + ". Ramps (a plane explains >= "
                f"{ct['ramps']['threshold']:g} of the map's variance): {ct['ramps']['n_ramps']}"
                + ("" if ct["ramps"]["median_plane"] is None
                   else f"; median plane R^2 {ct['ramps']['median_plane']:.2f}") + ".")
    if key == "grid_maps":
        g = m["celltypes"]["grid_symmetry"]
        return (f"The rate maps of the {g['n_grid']} grid units ({g['n_grid60']} with 60-degree, "
                f"{g['n_grid90']} with 90-degree symmetry)"
                + (f", the first {MAX_GRID_MAPS} shown" if g["n_grid"] > MAX_GRID_MAPS else "")
                + ": 60-degree units first, each set by falling grid score; as in the panel of all units.")
    if key == "tuning":
        return ("For each example unit: its rate map, mean activity against heading (all steps, 10-degree "
                "bins) and against speed (moving steps, equal-count bins). First the most "
                "direction-selective units, then the grid, border and band units with the highest "
                "scores of their type (the most spatially informative units fill missing types).")
    if key == "selectivity":
        rho = m["selectivity"]["spearman"]
        return ("Speed selectivity (|slope| of a line through the speed tuning curve), direction "
                "selectivity (max - min of the direction tuning curve) and spatial selectivity "
                "(lifetime sparseness of the rate map) of every unit, coloured by type. Spearman rho: "
                + ", ".join(f"{k.replace('_', ' ')} {_g(v['rho'], '.2f')}" for k, v in rho.items()) + ".")
    if key == "development":
        d = m["development"]
        med = {g: v["median_travel_correlation"] for g, v in d["summary"].items()}
        note = f" Note: {d['embedding']['note']}." if d["embedding"]["note"] else ""
        return (f"Each dot is one unit at one training stage (iterations {d['stages']}, blue to yellow), "
                f"placed by {d['embedding']['method']} from the distances 1 - r between the units' activity "
                f"on the same {d['n_trials']} test trials. Lines trace the final network's border (a) and "
                f"grid (b) units; their late maps are shown below (border: least travelled, grid: most). "
                f"c) Distance travelled per unit, summed 1 - r between consecutive stages; medians: "
                + ", ".join(f"{g} {_g(v, '.2f')}" for g, v in med.items()) + "." + note)
    if key == "error_correction":
        e = m["error_correction"]
        drops = ", ".join(f"{g['range'][0]}-{g['range'][1]}: {_g(g['drop'])} ({g['n_trials']} trials)"
                          for g in e["groups"])
        gr = e["no_interaction"]
        return (f"Squared error aligned to each trial's first boundary interaction ({e['n_aligned']} of "
                f"{e['n_trials']} trials have a full window of +-{e['window']} steps), grouped by the "
                f"interactions in the next {e['window']} steps (mean +- sem). Drop = mean error over the "
                f"{e['pre_steps']} steps up to the interaction minus the last {e['post_steps']} steps of "
                f"the window: {drops}. Trials without any interaction ({gr['n_trials']}): error grows by "
                f"{_g(gr['slope'])} per step (line fit R^2 {_g(gr['r2'], '.2f')}).")
    if key == "stability":
        st = m["stability"]
        return (f"Squared error of {st['n_paths']} path(s) of {st['n_steps']:,} steps (the network was "
                f"trained on {m['config']['n_steps']}), mean and sd per block of {st['block_steps']:,} "
                f"steps, against the error of the best constant output (red). "
                f"{_diverged(st)}Error / constant = {_g(st['ratio'], '.3f')}; slope "
                f"{_g(st['slope_per_million_steps'])} +- {_g(st['slope_se'])} per 10^6 steps; rate maps of "
                f"the first and second half correlate with median r = "
                f"{_g(st['map_stability']['median'], '.2f')}.")
    if key == "comparison":
        runs = m["comparison"]["runs"]
        return ("Rate maps of every unit of each run (same test trials and settings) and the fraction of "
                "units of each type. " + "; ".join(
                    f"{r['label']} ({', '.join(f'{k}={v[1]}' for k, v in r['differs'].items()) or 'reference'}): "
                    f"normalised error {r['normalised_error']:.3f}, grid {r['counts']['grid']}, "
                    f"border {r['counts']['border']}, band {r['counts']['band']}" for r in runs) + ".")
    if key in ("path_error", "path_maps"):
        p = m["trajectory"]
        real, sim = p["real"], p["simulated"]
        if key == "path_error":
            rs, ss = real["statistics"], sim["statistics"]
            return (f"The network along {p['source']} ({p['n_steps']:,} steps of {p['dt_s']:.3g} s, "
                    f"{_lead_in(p['path']['lead_in_steps'], 'after')}) and along one simulated "
                    f"path of the same length with the training motion. a) Squared error per "
                    f"{p['block_s']:.3g} s block, best-constant error dashed: normalised error "
                    f"{real['tracking']['normalised_error']:.3f} on the real path vs "
                    f"{sim['tracking']['normalised_error']:.3f} on the simulated one. b, c) True path and "
                    f"read-out. d) The real path cut into {real['trials']['n_trials']} trials of the training "
                    f"length, each {_lead_in(real['trials']['lead_in_steps'], 'reached by')}: "
                    f"normalised error {real['trials']['normalised_error']:.3f} vs "
                    f"{sim['trials']['normalised_error']:.3f} on as many simulated trials. "
                    f"e) Speeds per step: mean {rs['speed']['mean']:.3g} vs "
                    f"{ss['speed']['mean']:.3g} (matched), zero on {100 * rs['fraction_zero_speed']:.0f}% vs "
                    f"{100 * ss['fraction_zero_speed']:.0f}% of the steps; time near a wall (within "
                    f"{rs['near_wall_rel']:g} inradius) {100 * rs['fraction_near_wall']:.0f}% vs "
                    f"{100 * ss['fraction_near_wall']:.0f}%.")
        c = {k: p[k]["celltypes"]["counts"] for k in ("real", "simulated")}
        return (f"Rate maps of every unit from the simulated path (left) and from {p['source']} (right), "
                f"each classified against its own shuffle nulls. Median per-unit correlation of the two "
                f"maps {_g(p['map_correlation']['median'], '.2f')}; {100 * p['same_spatial_type']:.0f}% of the "
                f"units keep their spatial type. Grid / border / band units: "
                f"{c['simulated']['grid']} / {c['simulated']['border']} / {c['simulated']['band']} simulated, "
                f"{c['real']['grid']} / {c['real']['border']} / {c['real']['band']} real.")
    raise ValueError(f"unknown figure {key!r}; allowed: {', '.join(_ORDER)}")


# integrates_speed: None when the readout's resolution makes the test unable to tell
# (gridcore.train.heldout.speed_use).
_ANSWER = {True: "yes", False: "no", None: "cannot tell (the readout's resolution)"}


def summary_rows(m):
    """The metrics table: ``(claim, quantity, value)`` rows of text."""
    t, ct = m["tracking"], m["celltypes"]
    rows = [("C1", "normalised error (held-out)", f"{t['normalised_error']:.4f}"),
            ("C1", "squared error / best-constant error (arena units^2)",
             f"{t['squared_error']:.4g} / {t['best_constant_error']:.4g}"),
            ("C1", "normalised error of an integrator that ignores speed (same trials)",
             f"{t['heading_baseline_normalised_error']:.4f}"),
            ("C1", f"integrates speed (error <= {MAX_ERROR_RATIO:g} of that integrator's and step gain > "
                   f"{MIN_STEP_GAIN:g})", _ANSWER[t["speed_use"]["integrates_speed"]])]
    s = m["probe"]["final"]["summary"]
    rows += [("C1", f"step response: median gain (step {s['speeds'][len(s['speeds']) // 2]:.3g}; integrator 1)",
              f"{step_gain(s):.3g}"),
             ("C1", "step response: median |output| at rest; its angle to the heading (deg)",
              f"{s['median_rest_output']:.3g}; {s['median_abs_rest_angle_to_heading_deg']:.1f}")]
    names = {"speed": "speed-tuned units", "direction": "direction-tuned units",
             "untuned": "units without any label"}
    rows += [("C2", names.get(k, f"{k} units"), str(v)) for k, v in ct["counts"].items()]
    g = ct["grid_symmetry"]
    rows.append(("C2", "grid units with 60 / 90 deg symmetry", f"{g['n_grid60']} / {g['n_grid90']}"))
    ts = m["tuning"]["summary"]
    rows.append(("C3", "fraction of units speed-tuned; median R^2 of their line fit",
                 f"{ts['speed_tuned_fraction']:.2f}; {_g(ts['median_speed_r2_of_speed_tuned'], '.2f')}"))
    for typ, v in ts["by_type"].items():
        rows.append(("C3", f"median speed selectivity of {typ} units ({v['n']})",
                     _g(v["median_speed_selectivity"])))
    md = ts["most_direction_tuned"]
    rows.append(("C3", "lifetime sparseness: most direction-tuned units vs the others (medians)",
                 f"{_g(md['median_lifetime_sparseness'])} vs {_g(md['median_lifetime_sparseness_others'])}"))
    for k, v in m["selectivity"]["spearman"].items():
        rows.append(("C4", f"Spearman rho, {k.replace('_', ' ')}", _g(v["rho"], ".3f")))
    d = m["development"]
    if "skipped" in d:
        rows.append(("C5", "development", f"skipped: {d['skipped']}"))
    else:
        rows.append(("C5", "stages (iterations); embedding", f"{d['stages']}; {d['embedding']['method']}"))
        for grp, v in d["summary"].items():
            rows.append(("C5", f"median distance travelled (1 - r), {grp} units ({v['n']})",
                         _g(v["median_travel_correlation"], ".3f")))
    if m.get("comparison"):
        for r in m["comparison"]["runs"]:
            rows.append(("C6", f"{r['label']}: normalised error; grid / border / band units",
                         f"{r['normalised_error']:.3f}; {r['counts']['grid']} / {r['counts']['border']} / "
                         f"{r['counts']['band']}"))
    e = m["error_correction"]
    for grp in e["groups"]:
        rows.append(("C7", f"error drop after the first interaction, {grp['range'][0]}-{grp['range'][1]} "
                           f"later interactions ({grp['n_trials']} trials)", _g(grp["drop"])))
    rows.append(("C7", "drop grows with the number of interactions", str(e["drops_increase"])))
    gr = e["no_interaction"]
    rows.append(("C7", f"error growth without interactions per step (R^2), {gr['n_trials']} trials",
                 f"{_g(gr['slope'])} ({_g(gr['r2'], '.2f')})"))
    st = m["stability"]
    rows += [("C8", "long-path error / best-constant error", _g(st["ratio"], ".4f")),
             ("C8", "activity diverged (overflowed) at step", _g(st.get("diverged_at_step"), ",")),
             ("C8", "slope of the block errors per 10^6 steps (+- se)",
              f"{_g(st['slope_per_million_steps'])} +- {_g(st['slope_se'])}"),
             ("C8", "first / last block error",
              f"{_g(st['first_block'], '.4g')} / {_g(st['last_block'], '.4g')}"),
             ("C8", "median rate-map correlation, first vs second half",
              _g(st["map_stability"]["median"], ".3f"))]
    p = m.get("trajectory")
    if p:
        for name in ("real", "simulated"):
            q = p[name]
            rows += [("path", f"{name} path: normalised error; first / last block error",
                      f"{q['tracking']['normalised_error']:.4f}; {q['over_time']['first_block']:.4g} / "
                      f"{q['over_time']['last_block']:.4g}"),
                     ("path", f"{name} path cut into trials of the training length: normalised error",
                      f"{q['trials']['normalised_error']:.4f}"),
                     ("path", f"{name} path: grid / border / band / irregular units",
                      " / ".join(str(q["celltypes"]["counts"][k]) for k in ("grid", "border", "band",
                                                                              "irregular")))]
        rows += [("path", "median map correlation real vs simulated path; same spatial type",
                  f"{_g(p['map_correlation']['median'], '.3f')}; {100 * p['same_spatial_type']:.0f}%")]
    return rows


_CSS = """body{font-family:sans-serif;max-width:1100px;margin:1em auto;padding:0 1em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}
figure{margin:0}img{max-width:100%;border:1px solid #eee}figcaption{font-size:.85em;color:#444;margin:.3em 0}
.settings{font-size:.8em;color:#555}"""


def write_report(path, m):
    """Write ``report.html`` for the metrics ``m`` (figures are linked by their relative file names)."""
    esc = html.escape
    cfg, s = m["config"], m["settings"]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>gridcore analysis: {esc(m['run']['path'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>gridcore analysis of {esc(m['run']['path'])}</h1>",
        f"<p>{esc(cfg['arena'])} arena, N = {cfg['n_units']} units, {esc(cfg['encoding'])} inputs, "
        f"noise {cfg['noise_std']}, metabolic cost {'on' if cfg['metabolic'] else 'off'}, "
        f"{esc(cfg['optimizer'])}, {m['run']['final_iteration']} iterations. "
        "Claims C1-C8 as in the paper (Cueva &amp; Wei 2018); every number is in "
        "<a href='metrics.json'>metrics.json</a>.</p>",
        f"<p><b>Path integration.</b> The network {esc(m['tracking']['speed_use']['verdict'])}.</p>",
        "<p class='settings'>" + esc(
            f"backend {s['backend']} ({s['threads'] or 'default'} threads), seed {s['seed']}, "
            f"{s['n_trials']} test trials x "
            f"{s['n_steps']} steps, test noise {s['test_noise_std']}, {s['bins']} bins, {s['n_shuffles']} "
            f"shuffles, {s['long_paths']} long path(s) of {s['long_steps']:,} steps, blocks of "
            f"{s['block_steps']:,}" + (", quick" if s["quick"] else "")
            + f"; total {m['timings_s']['total']:.0f} s") + "</p>",
        # Metrics written before the training summary existed have no "training".
        *([f"<p class='settings'>{esc(training_text(m['training']))}</p>"] if "training" in m else []),
        "<h2>Summary</h2><table><tr><th>claim</th><th>quantity</th><th>value</th></tr>",
    ]
    parts += [f"<tr><td>{esc(c)}</td><td>{esc(q)}</td><td>{esc(v)}</td></tr>" for c, q, v in summary_rows(m)]
    parts.append("</table>")
    for key in _ORDER:
        fig = m["figures"].get(key)
        if fig is None:
            continue
        parts.append(f"<h2>{esc(_TITLES[key])}</h2><figure><img src='{esc(fig['file'])}' "
                     f"alt='{esc(_TITLES[key])}'><figcaption>{esc(fig['caption'])}</figcaption></figure>")
    parts.append("</body></html>\n")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("\n".join(parts))
    os.replace(tmp, path)
    return path
