"""Pure table building: run rows and raw series in, pandas tables out (no files read or written, no text rendered:
``analysis.rendering``). The statistics every table applies are ``analysis.inference``'s.

Verdicts ("faster", "slower", "equivalent") are a family per report. The speed family (``family_pairs``) is
fixed by which columns each configuration has, before any time is looked at: each column against native torch,
each Keras column against its backend's native, each variant against its default, and every pair of columns
where the report names a fastest, so that "fastest" never rests on comparisons picked after seeing the means.
Holm's step-down procedure at ``FAMILY_LEVEL`` runs over the family's testable comparisons (those with an
interval; the others can reject nothing, so leaving them out keeps the family-wise level). A comparison is
"clear" where Holm rejects a ratio of 1 and its 95% interval also lies wholly beyond the A/A margin (``aa``: how
far an A/A twin, the same implementation run as a second column, reads from its original: the design's own
bias between identical processes), and "equivalent" where the interval lies wholly inside it; with no twin the
margin is 0 and the rule is Holm's alone. Twins are calibration, never in the family. The accuracy
equivalences are two one-sided tests (TOST) at 2.5% per side, i.e. a 95% interval inside the margin,
Holm-corrected over their family too, each with its own power (``tost_power``). Error control is per report:
across reports (profiles, machines) nothing is controlled. Runs flagged busy (``quiet``) count in accuracy but
never in a timing verdict.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.inference import (
    CONFIDENCE,
    EQUIVALENCE_MARGIN_POINTS,
    MIN_RUNS,
    block_drifts,
    censored_median,
    difference_interval,
    geometric_mean,
    group_ratio,
    holm,
    paired_ratio,
    ratio_interval,
    tost_p,
    tost_power,
)
from analysis.load import KEYS
from analysis.noise import quiet
from analysis.rendering import ratio_text
from model.implementations import NAMES, Column, base_name, get, native_of
from model.plan import LABEL, TWIN_LABEL
from model.spec import CONFIGURATION, Configuration

REFERENCE = "torch"


def ordered(columns) -> list[str]:
    """Table columns in the table's order: implementations as listed in the table, each followed by its variants."""
    return sorted(set(columns), key=lambda name: (NAMES.index(base_name(name)), name))


def _order(table: pd.DataFrame, sort: list[str]) -> pd.DataFrame:
    if table.empty:
        return table
    rank = {name: i for i, name in enumerate(ordered(table["implementation"]))}
    table = table.assign(order=table["implementation"].map(rank))
    return table.sort_values(sort + ["order"]).drop(columns="order").reset_index(drop=True)


def timed_groups(runs: pd.DataFrame) -> dict[tuple, pd.DataFrame]:
    """Finished quiet runs with a steady step time, by (implementation, cell, layers, bidirectional): the runs
    every timing verdict rests on."""
    timed = runs[runs["status"] == "ok"].dropna(subset=["run_step_ms"])
    return dict(tuple(timed[quiet(timed)].groupby(KEYS)))


def _ensembles(group: pd.DataFrame, timed: pd.DataFrame | None) -> dict:
    """The configuration's ensembles (each once): their count, mean test accuracy, and the median over ensembles
    of one ensemble's training time: the sum over its seeds of that seed's timed run (a busy member's quiet
    re-run stands in for it; a seed with no timed run leaves the time out)."""
    if "ensemble" not in group or group["ensemble"].isna().all():
        return dict(ensembles=0, ensemble_accuracy=np.nan, ensemble_accuracy_sd=np.nan, ensemble_train_wall_s=np.nan)
    members = group.dropna(subset=["ensemble"])
    each = members.drop_duplicates("ensemble")
    accuracy = each["ensemble_accuracy"].astype(float)
    per_seed = (timed.groupby("seed")["train_wall_s"].median() if timed is not None
                else pd.Series(dtype=float))
    minutes = [per_seed.reindex(seeds["seed"].unique()).sum(min_count=len(seeds["seed"].unique()))
               for _, seeds in members.groupby("ensemble")]
    return dict(ensembles=len(each), ensemble_accuracy=accuracy.mean(),
                ensemble_accuracy_sd=accuracy.std(ddof=1) if len(each) > 1 else np.nan,
                ensemble_train_wall_s=float(np.median(minutes)))


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (implementation, cell, layers, bidirectional): speed over quiet runs (over busy ones only where
    no run was quiet: ``timed_runs`` 0), quality over every seed, CPU, memory, and the run-level ratio to native
    PyTorch."""
    finished = runs[runs["status"] == "ok"].dropna(subset=["run_step_ms"])
    groups = timed_groups(runs)
    rows = []
    for key, group in finished.groupby(KEYS):
        implementation, cell, layers, bidirectional = key
        timed = groups.get(key)
        timing = group if timed is None else timed
        # Quality is over seeds: a seed run again (a noisy run's re-run) trains the same network once more.
        seeds = group.groupby("seed")[["accuracy", "f1", "roc_auc", "log_loss"]].mean()
        row = dict(zip(KEYS, key), runs=len(group), seeds=len(seeds), timed_runs=0 if timed is None else len(timed),
                   noisy_runs=int((~quiet(group)).sum()),
                   step_ms=geometric_mean(timing["run_step_ms"]), step_min_ms=timing["run_step_ms"].min(),
                   step_max_ms=timing["run_step_ms"].max(), step_iqr_ms=timing["run_step_iqr_ms"].median(),
                   accuracy=seeds["accuracy"].mean(),
                   accuracy_sd=seeds["accuracy"].std(ddof=1) if len(seeds) > 1 else np.nan,
                   accuracy_min=seeds["accuracy"].min(), accuracy_max=seeds["accuracy"].max(),
                   f1=seeds["f1"].mean(), roc_auc=seeds["roc_auc"].mean(), log_loss=seeds["log_loss"].mean(),
                   hybrid_accuracy=group.astype({"hybrid_accuracy": float}).groupby("seed")["hybrid_accuracy"]
                   .mean().mean() if "hybrid_accuracy" in group else np.nan,
                   **_ensembles(group, timed),
                   epochs_run=int(group["epochs_run"].max()), epoch_s=timing["epoch_s"].median(),
                   first_step_s=timing["first_step_s"].median(),
                   train_wall_s=timing["train_wall_s"].median(), train_cpu_s=timing["train_cpu_s"].median(),
                   train_samples_per_s=timing["train_samples_per_s"].median(),
                   inference_per_s=timing["inference_per_s"].median(), latency_ms=timing["latency_ms"].median(),
                   cpu_utilisation=timing["cpu_utilisation"].median(), peak_above_mb=group["peak_above_mb"].median(),
                   minor_faults_per_step=group["minor_faults_per_step"].astype(float).median()
                   if "minor_faults_per_step" in group else np.nan,
                   peak_min_mb=group["peak_above_mb"].min(), peak_max_mb=group["peak_above_mb"].max(),
                   peak_anonymous_above_mb=group["peak_anonymous_above_mb"].astype(float).median()
                   if "peak_anonymous_above_mb" in group else np.nan,
                   rss_after_imports_mb=group["rss_after_imports_mb"].median(),
                   kernel_path=group["kernel_path"].iloc[0],
                   clip_binding_share=group["clip_binding_share"].astype(float).median()
                   if "clip_binding_share" in group else np.nan,
                   gemm_gflop_per_step=group["gemm_gflop_per_step"].iloc[0] if "gemm_gflop_per_step" in group
                   else np.nan)
        if "ttt_wall_s" in group and group["target_accuracy"].notna().any():
            # A timing figure like any other: timed runs only, one per seed (a busy run's re-run stands for it).
            per_seed = timing.sort_values("run_id").drop_duplicates("seed") if "run_id" in timing else timing
            row.update(target_accuracy=group["target_accuracy"].iloc[0], ttt_runs=len(per_seed),
                       reached_target=int(per_seed["ttt_wall_s"].notna().sum()),
                       ttt_wall_s=censored_median(per_seed["ttt_wall_s"]),
                       ttt_cpu_s=censored_median(per_seed["ttt_cpu_s"]),
                       ttt_eval_wall_s=censored_median(per_seed["ttt_eval_wall_s"]))
        reference = groups.get((REFERENCE, cell, layers, bidirectional))
        row["vs_torch"], row["vs_torch_low"], row["vs_torch_high"] = (
            group_ratio(timing, reference)[:3] if reference is not None
            and timed is not None else (np.nan, np.nan, np.nan))
        rows.append(row)
    return _order(pd.DataFrame(rows), ["cell", "bidirectional", "layers"])


def _released_keras(name: str) -> bool:
    entry = get(base_name(name))
    return entry.uses_keras and entry.patch is None and base_name(name) == name


def names_fastest(columns) -> bool:
    """Whether the report names a fastest among these columns of one configuration (``fastest``): two or more."""
    return len(set(columns)) > 1


def family_pairs(columns: dict[tuple, list[str]]) -> list[tuple]:
    """The report's speed comparisons, (configuration, numerator, denominator) with the two names in sorted order,
    from nothing but which columns each configuration has: every pair of columns where the report names a fastest.
    That holds each column against native torch, each Keras column against its backend's native (keras-tensorflow
    against tensorflow, keras-torch and keras-torch-fused against torch) and each variant against its default,
    the comparisons the report's other tables quote. All pairs rather than "the fastest against the others":
    which column has the lowest mean is known only after the data, and a family chosen after the data does not
    hold its level."""
    return sorted({(configuration, *pair) for configuration, names in columns.items() if names_fastest(names)
                   for pair in combinations(sorted(set(names)), 2)})


def twin_of(name: str) -> str | None:
    """The column an A/A twin doubles (``torch[label=b]`` -> ``torch``); None for any other column."""
    column = Column.parse(name)
    return column.without(LABEL).label if (LABEL, TWIN_LABEL) in column.options else None


def aa(runs: pd.DataFrame) -> pd.DataFrame:
    """Each A/A twin against the column it doubles, per configuration, over quiet runs: the ratio (``group_ratio``)
    with its 95% interval, and ``deviation``, how far the point reads from 1 as a share (max(r, 1/r) - 1). Its
    true ratio is 1, so the deviation is what the design itself puts between two identical processes (start
    position, neighbours, drift): the margin a difference must clear (``comparisons``)."""
    groups = timed_groups(runs)
    rows = []
    for (name, *configuration), twin in sorted(groups.items(), key=lambda item: str(item[0])):
        original = twin_of(name)
        if original is None or (original, *configuration) not in groups:
            continue
        ratio, low, high, p = group_ratio(twin, groups[(original, *configuration)])
        rows.append(dict(zip(KEYS[1:], configuration), implementation=original, ratio=ratio, low=low, high=high,
                         p=p, deviation=max(ratio, 1 / ratio) - 1))
    return pd.DataFrame(rows, columns=[*KEYS[1:], "implementation", "ratio", "low", "high", "p", "deviation"])


def margin(twins: pd.DataFrame) -> float:
    """The report's A/A margin: the largest deviation of any twin it knows (``aa``: its own, in any configuration,
    and its machine's A/A set), as a share; 0 where none was measured."""
    return float(twins["deviation"].max()) if not twins.empty else 0.0


def comparisons(runs: pd.DataFrame, twins: pd.DataFrame | None = None) -> pd.DataFrame:
    """The report's speed verdict family (``family_pairs`` over the columns with finished runs, twins left out),
    one row per pair, over quiet runs: the ratio (``group_ratio``: paired per block where both columns ran
    interleaved, else the ratio of geometric means), its 95% interval, the p-value, ``testable`` where there is an
    interval (``MIN_RUNS`` quiet runs or blocks a side, with spread; a column with no quiet run is in the family
    but untestable), the A/A ``margin`` (``margin`` of ``twins``, by default the runs' own ``aa``), ``clear``
    where Holm's procedure over the testable rows rejects a ratio of 1 at ``FAMILY_LEVEL`` family-wise and the
    interval lies beyond the margin on one side (above 1 + margin or below 1 / (1 + margin)), and ``equivalent``
    where it lies inside the margin."""
    groups = timed_groups(runs)
    twins = aa(runs) if twins is None else twins
    finished = runs[runs["status"] == "ok"].dropna(subset=["run_step_ms"])
    columns: dict[tuple, list[str]] = {}
    for name, *configuration in finished[KEYS].drop_duplicates().itertuples(index=False):
        if twin_of(name) is None:
            columns.setdefault(tuple(configuration), []).append(name)
    rows = []
    for configuration, numerator, denominator in family_pairs(columns):
        ratio, low, high, p = _group_ratio(groups, (numerator, *configuration), (denominator, *configuration))
        rows.append(dict(zip(KEYS[1:], configuration), numerator=numerator, denominator=denominator, ratio=ratio,
                         low=low, high=high, p=p, margin=margin(twins)))
    family = pd.DataFrame(rows, columns=[*KEYS[1:], "numerator", "denominator", "ratio", "low", "high", "p",
                                         "margin"])
    low, high, above = (family[c].astype(float) for c in ("low", "high", "margin"))
    above = 1 + above
    beyond, inside = (low > above) | (high < 1 / above), (low >= 1 / above) & (high <= above)
    return family.assign(testable=np.isfinite(family["p"].astype(float)), clear=holm(family["p"]) & beyond.to_numpy(),
                         equivalent=inside.to_numpy())


def steadiness(runs: pd.DataFrame, family: pd.DataFrame) -> pd.DataFrame:
    """Per comparison of the family whose columns ran interleaved in at least ``MIN_RUNS`` common blocks: how far
    the ratio moves within a run, from the first third of its common rounds to the last (``block_drifts``), as a
    factor with its 95% interval over blocks, and ``drifts`` where Holm over these rows rejects no drift. A ratio
    that drifts is not the steady ratio a longer run would read."""
    groups = timed_groups(runs)
    rows = []
    for row in family.itertuples():
        configuration = (row.cell, row.layers, row.bidirectional)
        numerator, denominator = groups.get((row.numerator, *configuration)), groups.get((row.denominator,
                                                                                          *configuration))
        if numerator is None or denominator is None:
            continue
        drifts = block_drifts(numerator, denominator)
        if len(drifts) < MIN_RUNS:
            continue
        factor, low, high, p = paired_ratio(drifts)
        rows.append(dict(zip(KEYS[1:], configuration), numerator=row.numerator, denominator=row.denominator,
                         blocks=len(drifts), drift=factor, low=low, high=high, p=p))
    table = pd.DataFrame(rows, columns=[*KEYS[1:], "numerator", "denominator", "blocks", "drift", "low", "high", "p"])
    return table.assign(drifts=holm(table["p"]))


def unsettled(runs: pd.DataFrame) -> pd.DataFrame:
    """Per column: its finished runs, the plan's least warm-up, the median steps the warm-up rule left out
    (``records.warmup``) and how many runs the rule would have cut further than its cap (``settled`` False)."""
    finished = runs[runs["status"] == "ok"].dropna(subset=["run_step_ms"])
    if "warmup_left_out" not in finished:
        return pd.DataFrame(columns=["implementation", "runs", "least", "left_out", "unsettled"])
    return (finished.groupby("implementation")
            .agg(runs=("run_id", "size"), least=("warmup_least", "min"), left_out=("warmup_left_out", "median"),
                 unsettled=("settled", lambda settled: int((~settled.astype(bool)).sum())))
            .reset_index())


def compared(family: pd.DataFrame, cell, layers, bidirectional, numerator: str, denominator: str) -> dict:
    """One comparison of the family, as numerator / denominator (clear False where it was never tested)."""
    for a, b, flip in ((numerator, denominator, False), (denominator, numerator, True)):
        row = family[(family["cell"] == cell) & (family["layers"] == layers)
                     & (family["bidirectional"] == bidirectional) & (family["numerator"] == a)
                     & (family["denominator"] == b)]
        if not row.empty:
            row = row.iloc[0]
            verdict = dict(clear=bool(row["clear"]), equivalent=bool(row["equivalent"]), margin=row["margin"])
            if flip:
                return dict(ratio=1 / row["ratio"], low=1 / row["high"], high=1 / row["low"], **verdict)
            return dict(ratio=row["ratio"], low=row["low"], high=row["high"], **verdict)
    return dict(ratio=np.nan, low=np.nan, high=np.nan, clear=False, equivalent=False, margin=np.nan)


def overhead(runs: pd.DataFrame, family: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each Keras implementation against the native one on its backend, per configuration, over quiet runs;
    ``clear`` from the report's Holm-corrected family."""
    family = comparisons(runs) if family is None else family
    groups = timed_groups(runs)
    rows = []
    for (implementation, cell, layers, bidirectional), group in groups.items():
        native = groups.get((native_of(base_name(implementation)), cell, layers, bidirectional))
        if native is None or not get(base_name(implementation)).uses_keras or twin_of(implementation):
            continue
        verdict = compared(family, cell, layers, bidirectional, implementation, native_of(base_name(implementation)))
        rows.append(dict(implementation=implementation, backend=get(base_name(implementation)).keras_backend,
                         cell=cell, layers=layers, bidirectional=bidirectional,
                         keras_ms=geometric_mean(group["run_step_ms"]),
                         native_ms=geometric_mean(native["run_step_ms"]), overhead=verdict["ratio"],
                         low=verdict["low"], high=verdict["high"], clear=verdict["clear"]))
    return _order(pd.DataFrame(rows), ["backend", "cell", "bidirectional", "layers"])


def depth_scaling(table: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Step time per depth and its growth relative to the shallowest depth run, per implementation and cell; with
    ``runs``, each growth's 95% run-level interval (``*_low``, ``*_high``: quiet runs, unadjusted, since these
    describe the cost of depth and are not verdicts of the report's family)."""
    wide = table.pivot_table(index=["implementation", "cell", "bidirectional"], columns="layers", values="step_ms")
    depths = list(wide.columns)
    wide.columns = [f"{c}_layer_ms" for c in depths]
    groups = timed_groups(runs) if runs is not None else {}
    for depth in depths[1:]:
        growth = f"{depth}x_vs_{depths[0]}"
        wide[growth] = wide[f"{depth}_layer_ms"] / wide[f"{depths[0]}_layer_ms"]
        if runs is not None:
            intervals = [_group_ratio(groups, (name, cell, depth, bi), (name, cell, depths[0], bi))[1:3]
                         for name, cell, bi in wide.index]
            wide[f"{growth}_low"], wide[f"{growth}_high"] = zip(*intervals) if intervals else ((), ())
    return wide.reset_index()


def _group_ratio(groups: dict, numerator: tuple, denominator: tuple) -> tuple[float, float, float, float]:
    """``ratio_interval`` of two timed groups' run step times (nan where either group has no quiet run)."""
    if numerator not in groups or denominator not in groups:
        return (float("nan"),) * 4
    return group_ratio(groups[numerator], groups[denominator])


def loss_agreement(runs: pd.DataFrame, losses: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per configuration and seed: how far each implementation's training-loss trajectory is from native
    PyTorch's over the same batches from the same weights (per step, and as the epoch's running mean)."""
    finished = runs[runs["status"] == "ok"]
    rows = []
    for (cell, layers, bidirectional, seed), group in finished.groupby([*CONFIGURATION, "seed"]):
        by_name = dict(zip(group["implementation"], group["run_id"]))
        reference = losses.get(by_name.get(REFERENCE, ""), np.array([]))
        for name, run_id in by_name.items():
            mine = losses.get(run_id, np.array([]))
            steps = min(len(mine), len(reference))
            if name == REFERENCE or steps == 0:
                continue
            gap = np.abs(mine[:steps] - reference[:steps])
            running = np.abs(np.cumsum(mine[:steps]) - np.cumsum(reference[:steps])) / np.arange(1, steps + 1)
            rows.append(dict(implementation=name, cell=cell, layers=layers, bidirectional=bidirectional, seed=seed,
                             steps=steps, first_step_gap=float(gap[0]), max_step_gap=float(gap.max()),
                             mean_step_gap=float(gap.mean()), max_running_mean_gap=float(running.max())))
    return _order(pd.DataFrame(rows), ["cell", "bidirectional", "layers", "seed"])


def equivalence(runs: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy of each implementation minus native PyTorch's, paired by seed (same weights, same batches;
    a seed run twice counts once, as its mean), with a 95% t interval. Verdicts over the table as one family:
    ``equivalent`` where the two one-sided tests against +-``EQUIVALENCE_MARGIN_POINTS`` (TOST, 2.5% per side)
    both reject after Holm's correction, ``higher``/``lower`` where the two-sided test does, else
    ``inconclusive``; with fewer than ``MIN_RUNS`` seeds or no spread, no verdict. ``power``: the row's own
    chance of ``equivalent`` were the true difference zero (``tost_power`` at its seeds and paired sd), since the
    sd differs several-fold between cells and one figure for the table would overstate the weak rows."""
    finished = runs[runs["status"] == "ok"]
    margin, rows = EQUIVALENCE_MARGIN_POINTS, []
    for (cell, layers, bidirectional), group in finished.groupby(CONFIGURATION):
        reference = group[group["implementation"] == REFERENCE].groupby("seed")["accuracy"].mean()
        for name, mine in group.groupby("implementation"):
            if name == REFERENCE:
                continue
            paired = mine.groupby("seed")["accuracy"].mean().to_frame("mine").join(reference.rename("ref"),
                                                                                   how="inner")
            if paired.empty:
                continue
            d = ((paired["mine"] - paired["ref"]) * 100).to_numpy()
            mean, low, high = difference_interval(d)
            tested = np.isfinite(low)
            sd = np.std(d, ddof=1) if len(d) > 1 else np.nan
            rows.append(dict(implementation=name, cell=cell, layers=layers, bidirectional=bidirectional,
                             seeds=len(paired), difference_points=mean, sd_points=sd,
                             power=tost_power(len(d), sd) if tested else np.nan, low=low, high=high,
                             p_different=stats.ttest_1samp(d, 0.0).pvalue if tested else np.nan,
                             p_equivalent=tost_p(d) if tested else np.nan))
    table = pd.DataFrame(rows, columns=["implementation", "cell", "layers", "bidirectional", "seeds",
                                        "difference_points", "sd_points", "power", "low", "high", "p_different",
                                        "p_equivalent"])
    equivalent = holm(table["p_equivalent"], (1 - CONFIDENCE) / 2)  # TOST: each one-sided test at 2.5%
    different = holm(table["p_different"])
    table["verdict"] = [
        "no interval (fewer than 3 seeds or no spread)" if not np.isfinite(row.low)
        else f"equivalent within ±{margin:g} point" if same
        else ("higher" if row.difference_points > 0 else "lower") if differs else "inconclusive"
        for row, same, differs in zip(table.itertuples(), equivalent, different)]
    return _order(table, ["cell", "bidirectional", "layers"])


def programming_model(table: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each variant column (eager vs graph, XLA, torch.compile, Keras jit) against its implementation's default
    column on the same configuration: the compile or trace time it adds to the first step, the steady-state
    gain per step (with ``runs``, its 95% run-level interval over quiet runs; the report's verdict family judges
    the same pair), and the number of steps after which it has paid for itself."""
    groups = timed_groups(runs) if runs is not None else {}
    rows = []
    for _, row in table.iterrows():
        name = row["implementation"]
        if base_name(name) == name or twin_of(name):
            continue
        default = table[(table["implementation"] == base_name(name)) & (table["cell"] == row["cell"])
                        & (table["layers"] == row["layers"]) & (table["bidirectional"] == row["bidirectional"])]
        if default.empty:
            continue
        default = default.iloc[0]
        configuration = (row["cell"], row["layers"], row["bidirectional"])
        extra_first_s = row["first_step_s"] - default["first_step_s"]
        gain_ms = default["step_ms"] - row["step_ms"]
        if gain_ms > 0:
            break_even = max(0.0, extra_first_s) * 1e3 / gain_ms
        else:
            break_even = np.nan  # never: slower per step
        rows.append(dict(variant=name, cell=row["cell"], layers=row["layers"], bidirectional=row["bidirectional"],
                         default_step_ms=default["step_ms"], variant_step_ms=row["step_ms"],
                         speedup=default["step_ms"] / row["step_ms"],
                         **dict(zip(("speedup_low", "speedup_high"), _group_ratio(
                             groups, (base_name(name), *configuration), (name, *configuration))[1:3])),
                         default_first_step_s=default["first_step_s"],
                         variant_first_step_s=row["first_step_s"], break_even_steps=break_even))
    return pd.DataFrame(rows)


def precision(runs: pd.DataFrame, family: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each bf16 column against its fp32 default on the same configuration: steady step (geometric means of quiet
    runs), bf16 / fp32 with its 95% run-level interval (``clear`` as in the report's verdict family), and test
    accuracy bf16 - fp32 in points, paired by seed,
    with its 95% interval and a TOST verdict within +-``EQUIVALENCE_MARGIN_POINTS`` (each test at 2.5%, Holm over
    the table); ``emulated`` where the CPU had no bf16 instructions (the ratio then measures the emulation)."""
    family = comparisons(runs) if family is None else family
    groups, finished = timed_groups(runs), runs[runs["status"] == "ok"]
    margin, rows = EQUIVALENCE_MARGIN_POINTS, []
    for (name, cell, layers, bidirectional), group in groups.items():
        default = groups.get((base_name(name), cell, layers, bidirectional))
        if default is None or not (group["precision"] == "bf16").all():
            continue
        speed = compared(family, cell, layers, bidirectional, name, base_name(name))
        same = finished[(finished["cell"] == cell) & (finished["layers"] == layers)
                        & (finished["bidirectional"] == bidirectional)]
        accuracy = {column: same[same["implementation"] == column].groupby("seed")["accuracy"].mean()
                    for column in (name, base_name(name))}
        d = (accuracy[name] - accuracy[base_name(name)]).dropna().to_numpy() * 100
        mean, d_low, d_high = difference_interval(d)
        tested = np.isfinite(d_low)
        rows.append(dict(implementation=base_name(name), cell=cell, layers=layers, bidirectional=bidirectional,
                         fp32_ms=geometric_mean(default["run_step_ms"]), bf16_ms=geometric_mean(group["run_step_ms"]),
                         ratio=speed["ratio"], low=speed["low"], high=speed["high"], clear=speed["clear"],
                         seeds=len(d), accuracy_points=mean, accuracy_low=d_low,
                         accuracy_high=d_high, emulated=bool(group["bf16_emulated"].any()),
                         p_equivalent=tost_p(d) if tested else np.nan))
    table = pd.DataFrame(rows, columns=["implementation", "cell", "layers", "bidirectional", "fp32_ms", "bf16_ms",
                                        "ratio", "low", "high", "clear", "seeds", "accuracy_points", "accuracy_low",
                                        "accuracy_high", "emulated", "p_equivalent"])
    equivalent = holm(table["p_equivalent"], (1 - CONFIDENCE) / 2)
    table["accuracy"] = ["no interval (fewer than 3 seeds or no spread)" if not np.isfinite(row.accuracy_low)
                         else f"equivalent within ±{margin:g} point" if same
                         else "not shown equivalent" + (" (lower)" if row.accuracy_high < 0 else "")
                         for row, same in zip(table.itertuples(), equivalent)]
    return _order(table, ["cell", "bidirectional", "layers"])


def fastest(table: pd.DataFrame, runs: pd.DataFrame, family: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per configuration where the report names a fastest (``names_fastest``): ``clear`` where one column is
    clearly faster than every other column in the report's Holm-corrected family (all pairs are in it); that
    column is ``best``. Otherwise ``best`` is the lowest geometric mean of quiet run medians and ``ties`` the
    columns it is not clearly faster than, ``equivalent`` where every one of them lies inside the A/A margin of it.
    ``second`` is the next by mean, with its ratio to ``best``. A/A twins are left out."""
    family = comparisons(runs) if family is None else family
    rows = []
    table = table[[twin_of(name) is None for name in table["implementation"]]]
    for (cell, bidirectional, layers), group in table.groupby(["cell", "bidirectional", "layers"]):
        if not names_fastest(group["implementation"]):
            continue
        ranked, configuration = group.sort_values("step_ms"), (cell, layers, bidirectional)
        names = list(ranked["implementation"])
        winner = next((name for name in names if all(_beats(family, configuration, name, other)
                                                      for other in names if other != name)), None)
        best = ranked[ranked["implementation"] == (winner or names[0])].iloc[0]
        others = ranked[ranked["implementation"] != best["implementation"]]
        ties = [other for other in others["implementation"]
                if not _beats(family, configuration, best["implementation"], other)]
        second = others.iloc[0]
        runner_up = compared(family, cell, layers, bidirectional, second["implementation"], best["implementation"])
        rows.append(dict(configuration=Configuration(cell, layers, bidirectional).label, cell=cell, layers=layers,
                         bidirectional=bidirectional, best=best["implementation"], best_ms=best["step_ms"],
                         best_runs=int(best["timed_runs"]), second=second["implementation"],
                         second_ms=second["step_ms"], second_runs=int(second["timed_runs"]),
                         ratio=runner_up["ratio"], low=runner_up["low"], high=runner_up["high"],
                         clear=not ties, margin=runner_up["margin"], ties=", ".join(ties),
                         equivalent=bool(ties) and all(compared(family, cell, layers, bidirectional, tie,
                                                               best["implementation"])["equivalent"] for tie in ties)))
    return pd.DataFrame(rows)


def _beats(family: pd.DataFrame, configuration: tuple, name: str, other: str) -> bool:
    """Whether ``name`` is clearly faster than ``other`` in the family (``other`` / ``name`` above 1, clear)."""
    verdict = compared(family, *configuration, other, name)
    return verdict["clear"] and verdict["ratio"] > 1


def winners_across(machines: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Configuration rows x machine columns of ``fastest`` tables, and whether the winner depends on the CPU:
    ``same`` (one clear winner everywhere), ``depends`` (clear winners differ), else ``unclear``."""
    cells, verdicts = {}, {}
    for machine, table in machines.items():
        for _, row in table.iterrows():
            interval = ratio_text(row["ratio"], row["low"], row["high"])
            cells.setdefault(row["configuration"], {})[machine] = (
                f"{row['best']} {row['best_ms']:.1f} ms; {row['second']} {interval}" if row["clear"]
                else f"{row['best']} ≈ {row['second']} ({interval}, within the A/A margin)" if row["equivalent"]
                else f"{row['best']}, {row['second']}: not resolved ({interval})" if np.isfinite(row["low"])
                else f"{row['best']}, {row['second']}: untestable ({interval})")
            verdicts.setdefault(row["configuration"], []).append((row["best"], row["clear"]))
    frame = pd.DataFrame.from_dict(cells, orient="index").reindex(columns=list(machines)).fillna("")
    frame["winner"] = [_verdict(verdicts[label]) for label in frame.index]
    return frame.rename_axis("configuration").reset_index()


def _verdict(results: list[tuple[str, bool]]) -> str:
    clear = {best for best, is_clear in results if is_clear}
    if len(results) < 2:
        return "one machine"
    if len(clear) > 1:
        return "depends on the CPU"
    if len(clear) == 1 and all(is_clear and best in clear for best, is_clear in results):
        return f"same: {clear.pop()}"
    return "unclear"


def thread_scaling(by_threads: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """Runs of one machine at several thread counts: per configuration, implementation and count, the step time,
    the speed-up over the fewest threads (their step / this step, geometric means of quiet runs, with the 95%
    interval), the parallel efficiency (speed-up / thread ratio) and CPU milliseconds per step."""
    base = min(by_threads)
    reference = timed_groups(by_threads[base])
    rows = []
    for threads, runs in sorted(by_threads.items()):
        for key, group in timed_groups(runs).items():
            implementation, cell, layers, bidirectional = key
            step = geometric_mean(group["run_step_ms"])
            speedup, low, high = (ratio_interval(reference[key]["run_step_ms"], group["run_step_ms"])[:3]
                                  if key in reference else (np.nan,) * 3)
            rows.append(dict(configuration=Configuration(cell, layers, bidirectional).label, cell=cell, layers=layers,
                             bidirectional=bidirectional, implementation=implementation, threads=threads,
                             runs=len(group), step_ms=step, speedup=speedup, low=low, high=high,
                             efficiency=speedup / (threads / base),
                             cpu_ms_per_step=step * group["cpu_utilisation"].median()))
    return _order(pd.DataFrame(rows), ["cell", "bidirectional", "layers", "threads"])


def ratios_across(machines: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """(configuration, implementation) rows x machine columns: step ratio to native torch with its interval."""
    cells = {}
    for machine, table in machines.items():
        for _, row in table[table["implementation"] != REFERENCE].iterrows():
            if not np.isfinite(row.get("vs_torch", np.nan)) or twin_of(row["implementation"]):
                continue
            key = (Configuration.of(row).label, row["implementation"])
            cells.setdefault(key, {})[machine] = ratio_text(row["vs_torch"], row["vs_torch_low"],
                                                            row["vs_torch_high"])
    if not cells:
        return pd.DataFrame(columns=["configuration", "implementation", *machines])
    frame = pd.DataFrame.from_dict(cells, orient="index").reindex(columns=list(machines)).fillna("")
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=["configuration", "implementation"])
    return frame.reset_index()


def precision_across(machines: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """(configuration, implementation) rows x machine columns of ``precision`` tables: bf16 / fp32 with its
    interval."""
    cells = {}
    for machine, table in machines.items():
        for row in table.itertuples():
            key = (Configuration.of(row).label, row.implementation)
            cells.setdefault(key, {})[machine] = (ratio_text(row.ratio, row.low, row.high)
                                                  + (" emulated" if row.emulated else ""))
    if not cells:
        return pd.DataFrame(columns=["configuration", "implementation", *machines])
    frame = pd.DataFrame.from_dict(cells, orient="index").reindex(columns=list(machines)).fillna("")
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=["configuration", "implementation"])
    return frame.reset_index()


def headline(table: pd.DataFrame, value: str) -> pd.DataFrame:
    """Configuration rows x implementation columns, one cell per configuration and implementation:

    ``step``: geometric-mean ms/step [run min-max] (†: busy runs left out), ratio to torch (95% interval);
    ``memory``: peak MB above the baseline; ``accuracy``: mean test accuracy ± sd over seeds;
    ``time_to_target``: censored median seconds to the target validation accuracy with validation on the clock,
    then training only (runs that reached it / runs), and the median total training time."""
    cells = {}
    for _, row in table.iterrows():
        label = Configuration.of(row).label
        cells.setdefault(label, {})[row["implementation"]] = _headline_cell(row, value)
    frame = pd.DataFrame.from_dict(cells, orient="index")
    return frame.reindex(columns=ordered(table["implementation"])).rename_axis("configuration").reset_index().fillna("")


def _headline_cell(row, value: str) -> str:
    if value == "step":
        busy = f" †{row['noisy_runs']} busy" if row.get("noisy_runs") else ""
        text = f"{row['step_ms']:.1f} [{row['step_min_ms']:.1f}-{row['step_max_ms']:.1f}]{busy}"
        if row["implementation"] != REFERENCE and np.isfinite(row.get("vs_torch", np.nan)):
            text += ", " + ratio_text(row["vs_torch"], row["vs_torch_low"], row["vs_torch_high"])
        return text
    if value == "memory":
        return f"{row['peak_above_mb']:.0f} [{row['peak_min_mb']:.0f}-{row['peak_max_mb']:.0f}]"
    if value == "accuracy":
        sd = f" ± {row['accuracy_sd']:.3f}" if np.isfinite(row["accuracy_sd"]) else " (one seed)"
        return f"{row['accuracy']:.3f}{sd}"
    if value == "time_to_target":
        total = f"; all training {row['train_wall_s']:.0f} s"
        reached = f"({row['reached_target']}/{row.get('ttt_runs', row['runs'])})"
        if not np.isfinite(row.get("ttt_eval_wall_s", np.nan)):
            return f"{'no time' if row.get('reached_target') else 'not reached'} {reached}{total}"
        return (f"{row['ttt_eval_wall_s']:.0f} s with validation; training {row['ttt_wall_s']:.0f} s, CPU "
                f"{row['ttt_cpu_s']:.0f} s {reached}{total}")
    raise ValueError(value)


def roofline(table: pd.DataFrame, peak_gflops: float) -> pd.DataFrame:
    """Configuration rows x implementation columns: achieved GEMM GFLOP/s at the median step, and its share of
    the machine's large-GEMM peak."""
    cells = {}
    for _, row in table.dropna(subset=["gemm_gflop_per_step"]).iterrows():
        achieved = row["gemm_gflop_per_step"] / (row["step_ms"] / 1e3)
        label = Configuration.of(row).label
        cells.setdefault(label, {"GFLOP/step": f"{row['gemm_gflop_per_step']:.2f}"})[row["implementation"]] = (
            f"{achieved:.1f} ({achieved / peak_gflops:.0%})")
    frame = pd.DataFrame.from_dict(cells, orient="index")
    return frame.reindex(columns=["GFLOP/step"] + ordered(table["implementation"])).rename_axis(
        "configuration").reset_index().fillna("")


