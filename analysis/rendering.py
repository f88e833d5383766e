"""Tables and figures as text: Markdown and CSV tables, ratios as every sentence writes them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

# Significant digits of a float in a CSV table: more than any measurement here resolves, few enough that the last
# bits, which numpy's vectorized kernels round differently on AVX2 and AVX-512 CPUs, never reach the text (written
# in full, a Zen 3's tables differed from a Zen 5's in 81 files: 0.7850165991272147 against ...146).
CSV_DIGITS = 6


def ratio_text(ratio: float, low: float, high: float) -> str:
    """A ratio as every table and sentence writes it: '1.23x (95% CI 1.10-1.38)', or the point and 'no
    interval'."""
    interval = f"95% CI {low:.2f}-{high:.2f}" if np.isfinite(low) else "no interval"
    return f"{ratio:.2f}x ({interval})"


def _csv_float(value: float) -> str:
    if not math.isfinite(value) or value == 0:
        return f"{abs(value) if value == 0 else value:g}"
    # a large value keeps its integer digits (a run's start in epoch seconds), up to a double's 17
    return f"{value:.{min(max(CSV_DIGITS, math.floor(math.log10(abs(value) + 0.5)) + 1), 17)}g}"


def to_csv(table: pd.DataFrame) -> str:
    """The table as CSV, floats at ``CSV_DIGITS`` significant digits."""
    return table.to_csv(index=False, float_format=_csv_float)


def to_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    if table.empty:
        return "_(no finished runs)_\n"
    return table.to_markdown(index=False, floatfmt=f".{digits}g") + "\n"
