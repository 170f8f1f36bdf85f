"""Markdown tables: every table the package and the experiments write is made here, from a DataFrame."""

import re

import pandas as pd

# A cell that reads as a number ("40.5 ± 0.5", "-5.0 points", "**12.3**", "6,652,808"): its column is
# right-aligned. "-", "n/a" and "" say nothing either way.
_NUMBER = re.compile(r"^[*+\-−(]*\d")
_NEUTRAL = {"", "-", "n/a"}


def markdown(frame, align=None):
    """`frame` as a Markdown (pipe) table, its columns the header, without the index.

    Each cell is written as `str(value)`, a missing one (None, NaN) as nothing: format numbers before
    (`f"{x:.3f}"`), since the caller knows how many digits a figure has earned (tabulate would read
    "1.780" as a number and write "1.78").

    Args:
        frame: a `pandas.DataFrame`.
        align: one of "left", "right", "center" per column; default: right for a column whose cells
            all read as numbers, left for the others.

    Returns:
        The table's lines joined by newlines, no newline at the end.
    """
    text = frame.map(lambda value: "" if value is None or (pd.api.types.is_scalar(value) and pd.isna(value))
                     else str(value)).astype(object)
    if align is None:
        align = ["right" if _numeric(text.iloc[:, i]) else "left" for i in range(text.shape[1])]
    return text.to_markdown(index=False, tablefmt="pipe", disable_numparse=True, colalign=align)


def _numeric(column):
    shown = [cell.strip() for cell in column if cell.strip() not in _NEUTRAL]
    return bool(shown) and all(_NUMBER.match(cell) for cell in shown)
