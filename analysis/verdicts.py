"""The speed verdicts ("faster", "slower", "equivalent"), a family per report, over ``analysis.tables``'s tables.

The speed family (``family_pairs``) is fixed by which columns each configuration has, before any time is looked
at: each column against native torch, each Keras column against its backend's native, each variant against its
default, and every pair of columns where the report names a fastest, so that "fastest" never rests on comparisons
picked after seeing the means. Holm's step-down procedure at ``FAMILY_LEVEL`` runs over the family's testable
comparisons (those with an interval; the others can reject nothing, so leaving them out keeps the family-wise
level). A comparison is "clear" where Holm rejects a ratio of 1 and its 95% interval also lies wholly beyond the
A/A margin (``aa``: how far an A/A twin, the same implementation run as a second column, reads from its original:
the design's own bias between identical processes), and "equivalent" where the interval lies wholly inside it;
with no twin the margin is 0 and the rule is Holm's alone. Twins are calibration, never in the family. Error
control is per report: across reports (profiles, machines) nothing is controlled. Runs flagged busy (``quiet``)
never enter a timing verdict.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from analysis.inference import (
    CONFIDENCE,
    EQUIVALENCE_MARGIN_POINTS,
    MIN_RUNS,
    block_drifts,
    difference_interval,
    geometric_mean,
    group_ratio,
    holm,
    paired_ratio,
    tost_p,
)
from analysis.load import KEYS
from analysis.tables import ordered_rows, timed_groups
from model.implementations import Column, base_name, get, native_of
from model.plan import LABEL, TWIN_LABEL
from model.spec import Configuration


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
    return ordered_rows(pd.DataFrame(rows), ["backend", "cell", "bidirectional", "layers"])


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
    return ordered_rows(table, ["cell", "bidirectional", "layers"])


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
