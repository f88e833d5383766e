"""The report's sentences: each function turns one table into the findings it supports, nothing more.

Every sentence names what it rests on (runs, seeds, the CPU) and says "cannot be told apart" where the
statistics in ``analysis/inference.py`` do not decide.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import inference, noise, rendering, tables, verdicts
from model.implementations import base_name, get, native_of
from model.spec import CELL_NAMES, CONFIGURATION, Configuration


def fastest_sentences(summary: pd.DataFrame, runs: pd.DataFrame, cpu: str, family: pd.DataFrame) -> list[str]:
    """Per configuration: the fastest implementation, named only where it is clearly faster than every other."""
    sentences = []
    for _, row in verdicts.fastest(summary, runs, family).iterrows():
        runs_note = f"{row['best_runs']} and {row['second_runs']} quiet runs"
        ratio = rendering.ratio_text(row["ratio"], row["low"], row["high"])
        if row["clear"]:
            sentences.append(f"- {row['configuration']} on {cpu}: **{row['best']}** is fastest "
                             f"({row['best_ms']:.1f} ms/step), clearly ahead of every other column; the runner-up "
                             f"{row['second']} takes {ratio} as long ({runs_note}).")
        else:
            sentences.append(f"- {row['configuration']} on {cpu}: {row['best']} ({row['best_ms']:.1f} ms) cannot be "
                             f"told apart from {row['ties']}; runner-up {row['second']} ({row['second_ms']:.1f} ms) "
                             f"at {ratio} ({runs_note}).")
    return sentences


def keras_backend_sentences(summary: pd.DataFrame, runs: pd.DataFrame, cpu: str, family: pd.DataFrame) -> list[str]:
    """Which Keras backend (as released) is fastest per configuration: the same rule as for implementations."""
    keras = [name for name in summary["implementation"].unique() if verdicts._released_keras(name)]
    if len(keras) < 2:
        return []
    return fastest_sentences(summary[summary["implementation"].isin(keras)], runs, cpu, family)


def method_sentences(family: pd.DataFrame, equivalence: pd.DataFrame | None,
                     twins: pd.DataFrame | None = None) -> list[str]:
    """Which statistic, which correction, which A/A margin (``twins``: ``verdicts.aa``) and which equivalence test
    this report's verdicts use."""
    sentences = [f"- Step time: geometric mean over timed runs of each run's median steady step. A ratio between "
                 "columns that ran interleaved is estimated round by round: per block (seed) the median of the log "
                 "ratios of the two columns' steps in each round, with a 95% t interval over blocks; between "
                 "sequential runs it is the ratio of geometric means with a 95% Welch t interval on log run medians "
                 f"(no interval with fewer than {inference.MIN_RUNS} runs or blocks a side or no spread). Intervals "
                 "printed are the unadjusted 95% ones.", family_sentence(family)]
    sentences += margin_sentences(twins if twins is not None else pd.DataFrame())
    if equivalence is not None and not equivalence.empty:
        margin = inference.EQUIVALENCE_MARGIN_POINTS
        sentences.append(f"- Accuracy: \"equivalent\" is a TOST (two one-sided t tests against ±{margin:g} point, "
                         "2.5% per side, i.e. the 95% interval inside the margin), \"higher\"/\"lower\" a two-sided "
                         f"t test at 5%; each Holm-corrected over the {len(equivalence)} rows of the equivalence "
                         "table.")
        sentences += power_sentences(equivalence)
    return sentences


def steadiness_sentences(drift: pd.DataFrame, warm: pd.DataFrame) -> list[str]:
    """The warm-up rule's choices per column and the comparisons whose ratio drifts within a run."""
    sentences = []
    if not warm.empty:
        sentences.append("- Warm-up: MSER-5 over each run's steps (`records.warmup`: at least the plan's "
                         f"{int(warm['least'].min())}, at most a quarter of the steps after them) left out a median of "
                         + ", ".join(f"{r.left_out:g} ({r.implementation})" for r in warm.itertuples())
                         + " steps; " + (", ".join(f"{r.unsettled} of {r.runs} {r.implementation} runs"
                                                   for r in warm.itertuples() if r.unsettled)
                                         or "no run") + " wanted more than the cap.")
    if not drift.empty:
        moving = drift[drift["drifts"]]
        sentences.append(f"- Drift: of the {len(drift)} comparisons timed interleaved, "
                         + (f"{len(moving)} drift from the first third of their rounds to the last (Holm at 5%): "
                            + "; ".join(f"{Configuration.of(r).label} {r.numerator} / {r.denominator} "
                                        f"{rendering.ratio_text(r.drift, r.low, r.high)}" for r in moving.itertuples())
                            if len(moving) else "none drifts from the first third of its rounds to the last (Holm at "
                            "5%)") + ".")
    return sentences or ["- (no steps to judge)"]


def margin_sentences(twins: pd.DataFrame) -> list[str]:
    """The A/A twins behind the margin, and the rule that uses it (``verdicts.comparisons``)."""
    if twins.empty:
        return ["- A/A margin: no twin was measured in this sweep or in its machine's A/A set, so the margin is 0 "
                "and a verdict is clear on Holm's test alone; what the design itself puts between two identical "
                "processes is not known here (add a twin: `--variants torch:label=b`)."]
    sentences = []
    for row in twins.itertuples():
        reach = max(row.high / row.ratio - 1, 1 - row.low / row.ratio) if np.isfinite(row.low) else np.nan
        where = f" ({row.source})" if isinstance(getattr(row, "source", None), str) else ""
        sentences.append(f"- A/A{where}, {Configuration.of(row).label}: {row.implementation}'s twin over it, "
                         f"{rendering.ratio_text(row.ratio, row.low, row.high)}: a deviation of {row.deviation:.1%}"
                         + (f", resolved to about ±{reach:.0%}." if np.isfinite(reach) else "."))
    return sentences + [
        "- The A/A margin: a twin's true ratio is 1, so how far it reads from 1 is the design's own bias between "
        "identical processes. A verdict is clear only where Holm rejects a ratio of 1 and its 95% interval also "
        f"lies beyond the margin, here m = {verdicts.margin(twins):.1%} (the largest twin deviation above): above "
        "1 + m or below 1 / (1 + m); \"equivalent\" (≈) where the interval lies inside it. Two columns that differ "
        "by less than the design's own bias are not called different."]


def family_sentence(family: pd.DataFrame) -> str:
    """What the speed verdict family is, how many of its comparisons could be tested, and what it controls."""
    size, testable, clear = len(family), int(family["testable"].sum()), int(family["clear"].sum())
    level = f"{inference.FAMILY_LEVEL:.0%}"
    if testable > 1:
        rule = (f"a verdict is \"clear\" where Holm's step-down procedure over the {testable} testable ones "
                f"rejects a ratio of 1 at {level} family-wise and its interval clears the A/A margin")
    elif testable == 1:
        # Holm over a family of one is the uncorrected test: say so rather than imply a correction.
        rule = (f"its verdict is \"clear\" where it rejects a ratio of 1 at {level} and its interval clears the A/A "
                "margin; Holm over one comparison is that plain test, nothing was corrected")
    else:
        rule = "so no verdict can be clear"
    return (f"- Speed verdicts are one family, fixed by which columns each configuration has before any time is "
            "seen: each column against native torch, each Keras column against its backend's native, each variant "
            "against its implementation's default, and every pair of columns in each configuration where a fastest "
            "is named (all pairs, not \"the fastest against the others\", which would choose the comparisons after "
            f"seeing the means). This report's family has {size} comparison{'' if size == 1 else 's'}, of which "
            f"{testable} {'was' if testable == 1 else 'were'} testable (had an interval: at least {inference.MIN_RUNS} "
            f"quiet runs or blocks a side, with spread); {rule} ({clear} clear). A column is named fastest only "
            f"where it is clearly faster than every other column. Error control is per report: at most a {level} "
            "chance of any false \"clear\" within this report (the margin only makes \"clear\" rarer); across "
            "reports (profiles, machines) nothing is "
            "controlled.")


def power_sentences(equivalence: pd.DataFrame) -> list[str]:
    """The equivalence test's power, row by row from each row's own seeds and paired sd, summed up per
    configuration (the rows' sds differ several-fold between cells: one figure for all would mislead)."""
    tested = equivalence[np.isfinite(equivalence["power"])]
    if tested.empty:
        return []
    margin = inference.EQUIVALENCE_MARGIN_POINTS
    parts = []
    for (cell, layers, bidirectional), rows in tested.groupby(CONFIGURATION, sort=False):
        power, sd, seeds = rows["power"], rows["sd_points"], rows["seeds"]
        parts.append(f"{Configuration(cell, layers, bidirectional).label} "
                     + (f"{power.iloc[0]:.0%} (sd {sd.iloc[0]:.2f} points" if len(rows) == 1 else
                        f"{power.min():.0%}-{power.max():.0%} (sd {sd.min():.2f}-{sd.max():.2f} points")
                     + (f", {seeds.min()} seeds)" if seeds.min() == seeds.max() else
                        f", {seeds.min()}-{seeds.max()} seeds)"))
    weak = int((tested["power"] < 0.5).sum())
    return [f"- Power, row by row (`power` in the equivalence table): the chance that a row's 95% interval lands "
            f"inside ±{margin:g} point when nothing differs, from that row's own seeds and paired sd (before Holm; "
            f"an sd from a few seeds is itself rough): {'; '.join(parts)}. Below 50% in {weak} of {len(tested)} "
            "rows; there \"inconclusive\" is not evidence of a difference."]


def overhead_sentences(overhead: pd.DataFrame, summary: pd.DataFrame) -> list[str]:
    sentences = []
    for keras_name in tables.ordered(overhead["implementation"]):
        group = overhead[overhead["implementation"] == keras_name]
        backend, native = get(base_name(keras_name)).keras_backend, native_of(base_name(keras_name))
        slower = group[group["clear"] & (group["overhead"] > 1.0)]
        faster = group[group["clear"] & (group["overhead"] < 1.0)]
        tied = len(group) - len(slower) - len(faster)
        paths = summary[summary["implementation"] == keras_name]["kernel_path"].unique()
        native_paths = summary[summary["implementation"] == native]["kernel_path"].unique()
        patch = f" (patched: {get(base_name(keras_name)).patch})" if get(base_name(keras_name)).patch else ""
        sentences.append(
            f"- {keras_name}{patch} on {backend}: median overhead {group['overhead'].median():.2f}x over native "
            f"{native} (range {group['overhead'].min():.2f}-{group['overhead'].max():.2f}x across {len(group)} "
            f"configurations; clearly slower in {len(slower)}, clearly faster in "
            f"{len(faster)}, not distinguishable in {tied}). Kernel path: Keras ran *{'; '.join(paths)}*, native "
            f"ran *{'; '.join(native_paths)}*.")
    return sentences


def depth_sentences(depth: pd.DataFrame) -> list[str]:
    growth = [c for c in depth.columns if "x_vs_" in c and not c.endswith(("_low", "_high"))]
    if not growth:
        return ["- One depth only in this profile; depth scaling is the full profile's question."]
    deepest = growth[-1]
    deeper, shallow = deepest.split("x_vs_")
    sentences = []
    for name in tables.ordered(depth["implementation"]):
        rows = depth[depth["implementation"] == name]
        measured = np.isfinite(rows[deepest].astype(float))

        def shape(r):
            return f"{CELL_NAMES[r['cell']]}{' bi' if r['bidirectional'] else ''}"

        values = ", ".join(shape(r) + " " + rendering.ratio_text(r[deepest], r.get(f"{deepest}_low", np.nan),
                                                                   r.get(f"{deepest}_high", np.nan))
                           for _, r in rows[measured].iterrows())
        missing = ", ".join(shape(r) for _, r in rows[~measured].iterrows())
        if values:
            sentences.append(f"- {name}: {deeper} layers cost {values} the {shallow}-layer step time (95% run-level "
                             "intervals, quiet runs)" + (f"; not timed at both depths: {missing}." if missing else "."))
    return sentences


def memory_sentences(summary: pd.DataFrame) -> list[str]:
    sentences = []
    for name in tables.ordered(summary["implementation"]):
        rows = summary[summary["implementation"] == name]
        anonymous = rows["peak_anonymous_above_mb"].median() if "peak_anonymous_above_mb" in rows else np.nan
        sentences.append(f"- {name}: training peak RSS above its ready baseline "
                         f"{rows['peak_above_mb'].median():.0f} MB median (runs range "
                         f"{rows['peak_min_mb'].min():.0f}-{rows['peak_max_mb'].max():.0f} MB)"
                         + (f", of which anonymous memory (RssAnon) {anonymous:.0f} MB" if np.isfinite(anonymous)
                            else "")
                         + f"; RSS after imports {rows['rss_after_imports_mb'].median():.0f} MB.")
    sentences.append("- Peaks are kernel high-water marks after a reset, one per run; the range is over runs. "
                     "RssAnon's peak (sampled every 0.2 s) is the working set the run allocated, free of the code "
                     "pages and compile caches that move the RSS of TensorFlow and XLA. "
                     "Inference peaks (in the records) are measured above the post-training RSS, which depends on "
                     "each framework's allocator, and are not compared across frameworks.")
    return sentences


def loss_sentences(agreement: pd.DataFrame) -> list[str]:
    if agreement.empty:
        return ["- No per-step losses in these records (schema 1), or no native PyTorch runs to compare with."]
    sentences = []
    for name, group in agreement.groupby("implementation", sort=False):
        sentences.append(f"- {name} vs torch over {int(group['steps'].median())} identical batches: first-step loss "
                         f"gap at most {group['first_step_gap'].max():.1e}; running-mean loss gap at most "
                         f"{group['max_running_mean_gap'].max():.3f} (per-step gap median "
                         f"{group['mean_step_gap'].median():.3f}).")
    sentences.append("- All start from the same weights and see the same batches; what separates them is dropout "
                     "(each framework draws its own masks, from the first step on), float32 rounding"
                     + (", and keras-tensorflow's gradient clip: Keras' global_clipnorm on TensorFlow takes the norm "
                        "of the embedding gradient's unsummed slices, so whenever the clip binds it scales by "
                        "another factor (a known difference, tested)" if "keras-tensorflow" in set(
                            agreement["implementation"]) else "")
                     + ". With dropout off, tests/test_parity.py shows the same logits, losses and gradients to "
                     "2e-5-1e-4 (relative) and the same updates after 5 Adam steps to 5e-4; here the running "
                     "means staying close is the check.")
    return sentences


def clipping_sentences(summary: pd.DataFrame, clip_norm: float) -> list[str]:
    """Where the global-norm clip bound, from the norms before clipping that the natives record per step."""
    if "clip_binding_share" not in summary or summary["clip_binding_share"].isna().all():
        return []
    known = summary.dropna(subset=["clip_binding_share"])
    labels = [Configuration.of(row).label for _, row in known.iterrows()]
    shares = ", ".join(f"{row['implementation']} {label} {row['clip_binding_share']:.0%}"
                       for label, (_, row) in zip(labels, known.iterrows()))
    missing = sorted(set(summary["implementation"]) - set(known["implementation"]))
    keras = [name for name in missing if get(base_name(name)).uses_keras]
    older = [name for name in missing if name not in keras]
    return [f"- Gradient clipping at global norm {clip_norm:g} bound in this share of the training steps (median "
            f"over runs, from the norm before clipping each step records): {shares}."
            + (f" Not recorded for {', '.join(keras)}: Keras clips inside its optimizer, which exposes no norm."
               if keras else "")
            + (f" Not recorded for {', '.join(older)}: its records predate the norms." if older else "")]


def quality_sentences(summary: pd.DataFrame, equivalence: pd.DataFrame, baseline: dict | None) -> list[str]:
    sentences = []
    for _, row in summary.iterrows():
        label = Configuration.of(row).label
        spread = (f" ± {row['accuracy_sd']:.4f} (min {row['accuracy_min']:.4f}, max {row['accuracy_max']:.4f}, "
                  f"{int(row['seeds'])} seeds)" if np.isfinite(row["accuracy_sd"]) else " (one seed: no spread)")
        sentences.append(f"- {label}, {row['implementation']}: test accuracy {row['accuracy']:.4f}{spread}, "
                         f"F1 {row['f1']:.4f}, ROC-AUC {row['roc_auc']:.4f}.")
    for _, row in equivalence.iterrows():
        label = Configuration.of(row).label
        interval = f"95% CI {row['low']:+.2f} to {row['high']:+.2f}" if np.isfinite(row["low"]) else "no interval"
        power = f", power {row['power']:.0%}" if np.isfinite(row.get("power", np.nan)) else ""
        sentences.append(f"- {label}: {row['implementation']} minus torch {row['difference_points']:+.2f} points "
                         f"({interval}, paired over {int(row['seeds'])} seeds{power}): **{row['verdict']}**.")
    hybrid = summary.dropna(subset=["hybrid_accuracy"]) if "hybrid_accuracy" in summary else summary.iloc[:0]
    if not hybrid.empty:
        several = hybrid[CONFIGURATION].drop_duplicates().shape[0] > 1
        values = ", ".join((f"{Configuration.of(row).label} " if several
                            else "") + f"{row['implementation']} {row['hybrid_accuracy']:.4f}"
                           for _, row in hybrid.iterrows())
        sentences.append(f"- Hybrid row, not the recipe: each run's test probabilities averaged with the TF-IDF "
                         f"uni+bigram model's, equal weights fixed in advance (mean over seeds): {values}.")
    ensembled = summary[summary["ensembles"] > 0] if "ensembles" in summary else summary.iloc[:0]
    for _, row in ensembled.iterrows():
        label = Configuration.of(row).label
        spread = f" ± {row['ensemble_accuracy_sd']:.4f}" if np.isfinite(row["ensemble_accuracy_sd"]) else ""
        sentences.append(f"- Ensemble of 3 (consecutive seeds' runs, test probabilities averaged; still a pure "
                         f"recurrent model), {label}, {row['implementation']}: test accuracy "
                         f"{row['ensemble_accuracy']:.4f}{spread} over {int(row['ensembles'])} ensemble(s), "
                         f"{row['ensemble_train_wall_s'] / 60:.1f} min of training each (its runs' sum).")
    if baseline:
        unigram = baseline.get("unigram_accuracy")
        sentences.append(f"- The TF-IDF + logistic-regression baseline reaches {baseline['metrics']['accuracy']:.4f} "
                         "with unigrams and bigrams" + (f", {unigram:.4f} with unigrams only," if unigram else "")
                         + f" on the same rows (mean over {len(baseline['seeds'])} seed(s)).")
    return sentences


def time_to_target_sentences(summary: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    if "ttt_wall_s" not in summary or summary["target_accuracy"].isna().all():
        return []
    target = summary["target_accuracy"].dropna().iloc[0]
    checks = "/".join(map(str, sorted(runs["validations_per_epoch"].dropna().astype(int).unique())))
    sentences = [f"- Time until validation accuracy first reached {target:.0%}, MLPerf's way: validation on the "
                 f"clock, the median over runs with a run that never reached it counted as the slowest (more than "
                 f"one such run: no time). Checked {checks} times per epoch, so times are rounded up to the next "
                 "check; training-only time beside it:"]
    for _, row in summary.iterrows():
        label = Configuration.of(row).label
        reached = f"{row['reached_target']}/{row['runs']} runs reached it"
        if np.isfinite(row["ttt_eval_wall_s"]):
            sentences.append(f"  - {label}, {row['implementation']}: {row['ttt_eval_wall_s']:.0f} s wall with "
                             f"validation; {row['ttt_wall_s']:.0f} s training only, {row['ttt_cpu_s']:.0f} s CPU "
                             f"({reached}).")
        elif row["reached_target"]:
            sentences.append(f"  - {label}, {row['implementation']}: no time ({reached}; more than one did not).")
        else:
            sentences.append(f"  - {label}, {row['implementation']}: not reached in {row['runs']} runs.")
    return sentences + steps_to_target_sentences(runs)


def steps_to_target_sentences(runs: pd.DataFrame) -> list[str]:
    """Steps until the target, seed by seed: one seed means the same initial weights and batches in every column,
    so the columns differ there only by their dropout masks and rounding; the check spacing is the resolution."""
    finished = runs[runs["status"] == "ok"].drop_duplicates(["implementation", *tables.KEYS[1:], "seed"])
    if "ttt_step" not in finished or finished.empty:
        return []
    sentences = []
    for key, group in finished.groupby(tables.KEYS[1:], sort=False):
        seeds = sorted(group["seed"].unique())
        spacing = (group["steps_per_epoch"] / group["validations_per_epoch"]).median()
        columns = []
        for name in tables.ordered(group["implementation"]):
            by_seed = group[group["implementation"] == name].set_index("seed")["ttt_step"]
            columns.append(f"{name} " + ", ".join("not run" if seed not in by_seed.index else "-"
                                                  if pd.isna(by_seed[seed]) else f"{int(by_seed[seed])}"
                                                  for seed in seeds))
        sentences.append(f"  - Steps to the target, seed by seed ({', '.join(map(str, seeds))}; -: never reached; a "
                         f"check every {spacing:.0f} steps), {Configuration(*key).label}: {'; '.join(columns)}.")
    return sentences


def quietness_sentences(runs: pd.DataFrame, canary: dict | None = None) -> list[str]:
    finished = runs[runs["status"] == "ok"]
    if "other_cpu_fraction" not in finished or finished["other_cpu_fraction"].isna().all():
        return ["- Machine load during training was not recorded (schema-1 records)."]
    woven = noise.interleaved(finished)
    noisy = finished[~noise.quiet(finished)]
    sentences = [f"- /proc/stat: other processes used at most {finished['other_cpu_fraction'].max():.1%} of the "
                 f"machine and the hypervisor stole at most {finished['steal_fraction'].max():.1%} of it while any "
                 f"run trained (its own turns, for an interleaved run; a sequential run is busy above "
                 f"{noise.QUIET_OTHER_CPU:.0%} and {noise.QUIET_STEAL:.0%})."]
    if woven.any():
        sentences.append(f"- {int(woven.sum())} of {len(finished)} run(s) ran interleaved: each is timed whatever the "
                         "machine did, since a slow period fell on every column of its rounds alike and its "
                         "comparisons are paired round by round.")
    if canary and "canary_slowdown" in finished and finished["canary_slowdown"].notna().any():
        slow = finished["canary_slowdown"].dropna()
        sentences.append(
            f"- Canary (`runners/harness/canary.py`, a diagnostic that judges no run: `analysis/noise.py` says why): "
            f"reference {canary['ms']:.1f} ms; during training the runs' canaries ran {slow.min():.2f}-"
            f"{slow.max():.2f}x it (median {slow.median():.2f}x), at a cost of at most "
            f"{finished['canary_share'].max():.2%} of training time.")
    if noisy.empty:
        sentences.append("- No run was excluded from the timing figures.")
    else:
        sentences.append(f"- {len(noisy)} of {len(finished)} sequential run(s) trained on a busy machine: their "
                         "accuracy counts, their times enter no verdict and no step-time figure (cells marked † in "
                         f"the headline tables): {', '.join(noisy['run_id'])}.")
    return sentences


def machine_findings(winners: pd.DataFrame, labels: list[str]) -> list[str]:
    sentences = []
    for _, row in winners[winners["winner"] != "one machine"].iterrows():
        measured = {label: row[label] for label in labels if row[label]}
        detail = "; ".join(f"{label}: {text}" for label, text in measured.items())
        if row["winner"] == "depends on the CPU":
            sentences.append(f"- {row['configuration']}: **the winner depends on the CPU** ({detail}).")
        elif row["winner"].startswith("same"):
            sentences.append(f"- {row['configuration']}: {row['winner'].removeprefix('same: ')} is fastest on "
                             f"every machine ({detail}).")
        else:
            sentences.append(f"- {row['configuration']}: no winner on at least one machine ({detail}).")
    return sentences
