"""Tables as data: run rows and raw series in, pandas tables out (no files read or written, no text rendered:
``analysis.rendering``; the speed verdicts over these tables: ``analysis.verdicts``). The statistics every table
applies are ``analysis.inference``'s. Runs flagged busy (``quiet``) count in accuracy but never in a timing
figure. The accuracy equivalences (``equivalence``) are two one-sided tests (TOST) at 2.5% per side, i.e. a 95%
interval inside the margin, Holm-corrected over their family, each with its own power (``tost_power``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.inference import (
    CONFIDENCE,
    EQUIVALENCE_MARGIN_POINTS,
    censored_median,
    difference_interval,
    geometric_mean,
    group_ratio,
    holm,
    ratio_interval,
    tost_p,
    tost_power,
)
from analysis.load import KEYS
from analysis.noise import quiet
from model.implementations import NAMES, base_name
from model.spec import CONFIGURATION, Configuration

REFERENCE = "torch"


def ordered(columns) -> list[str]:
    """Table columns in the table's order: implementations as listed in the table, each followed by its variants."""
    return sorted(set(columns), key=lambda name: (NAMES.index(base_name(name)), name))


def ordered_rows(table: pd.DataFrame, sort: list[str]) -> pd.DataFrame:
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


def pareto(cost, value) -> np.ndarray:
    """Which points no other point beats: none costs no more and reaches more, or costs less and reaches as much
    (ties on both: each stays on the front)."""
    cost, value = np.asarray(cost, float), np.asarray(value, float)
    beaten = ((cost[None, :] <= cost[:, None]) & (value[None, :] > value[:, None])) | (
        (cost[None, :] < cost[:, None]) & (value[None, :] >= value[:, None]))
    return ~beaten.any(axis=1) & np.isfinite(cost) & np.isfinite(value)  # an unmeasured point is on no front


def accuracy_points(runs: pd.DataFrame, name: str) -> pd.DataFrame:
    """A set's networks as points of the accuracy-against-minutes picture: a row per column and configuration
    (mean test accuracy over seeds with its 95% t interval, the median seed's training CPU-minutes) and per
    column and configuration with ensembles of 3 (over its ensembles; each ensemble's CPU the sum of its
    members'). Runs of one plan from several machines pool here for accuracy (a seed's runs: their median); their
    minutes never do (``frontier`` is per machine)."""
    rows = []
    finished = runs[runs["status"] == "ok"]
    for key, group in finished.groupby(KEYS):
        seeds = group.groupby("seed")[["accuracy", "train_cpu_s"]].median()
        accuracy, low, high = difference_interval(seeds["accuracy"])
        rows.append(dict(set=name, kind="network", **dict(zip(KEYS, key)), seeds=len(seeds), accuracy=accuracy,
                         low=low, high=high, cpu_minutes=seeds["train_cpu_s"].median() / 60))
        if "ensemble" in group and group["ensemble"].notna().any():
            # an ensemble's CPU: its members' runs (a seed run again: the median of its runs, as above); a
            # member without CPU time leaves the ensemble's unknown
            each = [(float(members["ensemble_accuracy"].iloc[0]),
                     seeds["train_cpu_s"].reindex(members["seed"].unique()).sum(min_count=members["seed"].nunique()))
                    for _, members in group.dropna(subset=["ensemble"]).groupby("ensemble")]
            accuracy, low, high = difference_interval([a for a, _ in each])
            rows.append(dict(set=name, kind="ensemble", **dict(zip(KEYS, key)), seeds=len(each), accuracy=accuracy,
                             low=low, high=high, cpu_minutes=float(np.median([c for _, c in each])) / 60))
    return pd.DataFrame(rows)


def linear_points(baselines: dict[str, dict | None]) -> pd.DataFrame:
    """The linear models of a machine's sets (set name -> its baseline) as points: one per model (its description:
    n-grams, tokenizer, C), each seed's fit once however many sets hold it (sets of one split share their fits),
    with the fit's CPU-minutes (scikit-learn fits on one core, so a record without CPU time of its own gives its
    wall time)."""
    found: dict[tuple, dict] = {}
    for name, baseline in baselines.items():
        for seed, result in (baseline or {}).get("seeds", {}).items():
            for fitted in (result, result.get("unigram")):
                if fitted:
                    point = found.setdefault((fitted["implementation"], fitted["description"]), dict(set=name))
                    point.setdefault(seed, (fitted["metrics"]["accuracy"], fitted.get("fit_cpu_s", fitted["fit_s"])))
    rows = []
    for (implementation, _), point in found.items():
        fits = [value for key, value in point.items() if key != "set"]
        accuracy, low, high = difference_interval([a for a, _ in fits])
        rows.append(dict(set=point["set"], kind="linear", implementation=implementation, seeds=len(fits),
                         accuracy=accuracy, low=low, high=high,
                         cpu_minutes=float(np.median([c for _, c in fits])) / 60))
    return pd.DataFrame(rows)


def frontier(sets: dict[str, object]) -> pd.DataFrame:
    """One machine's accuracy against training CPU-minutes (``sets``: set name -> that machine's ``Results``):
    every network, ensemble and linear model as a point, each marked on the Pareto front of them all or not.
    Minutes are training only: validation, testing and the data's preparation out, pretraining in."""
    table = pd.concat([*(accuracy_points(data.runs, name) for name, data in sets.items()),
                       linear_points({name: data.baseline for name, data in sets.items()})], ignore_index=True)
    if table.empty:
        return table
    table["pareto"] = pareto(table["cpu_minutes"], table["accuracy"])
    return table.sort_values(["cpu_minutes", "accuracy"]).reset_index(drop=True)


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
        row.update(_time_to_target(group, timing))
        reference = groups.get((REFERENCE, cell, layers, bidirectional))
        row["vs_torch"], row["vs_torch_low"], row["vs_torch_high"] = (
            group_ratio(timing, reference)[:3] if reference is not None
            and timed is not None else (np.nan, np.nan, np.nan))
        rows.append(row)
    return ordered_rows(pd.DataFrame(rows), ["cell", "bidirectional", "layers"])


def _time_to_target(group: pd.DataFrame, timing: pd.DataFrame) -> dict:
    """A timing figure like any other: timed runs only, one per seed (a busy run's re-run stands for it); none
    where the profile names no target."""
    if "ttt_wall_s" not in group or not group["target_accuracy"].notna().any():
        return {}
    per_seed = timing.sort_values("run_id").drop_duplicates("seed") if "run_id" in timing else timing
    return dict(target_accuracy=group["target_accuracy"].iloc[0], ttt_runs=len(per_seed),
                reached_target=int(per_seed["ttt_wall_s"].notna().sum()),
                ttt_wall_s=censored_median(per_seed["ttt_wall_s"]), ttt_cpu_s=censored_median(per_seed["ttt_cpu_s"]),
                ttt_eval_wall_s=censored_median(per_seed["ttt_eval_wall_s"]))


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
    return ordered_rows(pd.DataFrame(rows), ["cell", "bidirectional", "layers", "seed"])


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
    return ordered_rows(table, ["cell", "bidirectional", "layers"])


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
    return ordered_rows(pd.DataFrame(rows), ["cell", "bidirectional", "layers", "threads"])


