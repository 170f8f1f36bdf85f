"""Markdown tables (issue 29): one helper, `tinyresnet.tables.markdown`, makes every table the package and
the experiments write; no module builds `| ... |` rows by hand."""

import ast
import glob
import os
import re

import pandas as pd

from tinyresnet import tables

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A row's start or end, or a header's rule: "| net", "55.0 |", "|---|", "|:--".
HAND_MADE_ROW = re.compile(r"^\|\s|\s\|$|\|\s*:?-{3}")


def test_a_frame_becomes_a_pipe_table_with_its_cells_as_written():
    frame = pd.DataFrame([["net1", "1.780", "6,652,808", "40.5 ± 0.5", "`(Conv 16) x 2`"],
                          ["net6", "-", 12, None, "n/a"]], columns=["net", "GFLOPs", "params", "val", "spec"])
    assert tables.markdown(frame).splitlines() == [
        "| net   |   GFLOPs |    params |        val | spec            |",
        "|:------|---------:|----------:|-----------:|:----------------|",
        "| net1  |    1.780 | 6,652,808 | 40.5 ± 0.5 | `(Conv 16) x 2` |",  # "1.780" kept: no number parsing
        "| net6  |        - |        12 |            | n/a             |"]  # numbers to the right, None empty


def test_alignment_can_be_chosen_and_an_empty_frame_is_its_header():
    frame = pd.DataFrame([["a", "1"]], columns=["x", "y"])
    assert tables.markdown(frame, align=["right", "left"]).splitlines()[1] == "|----:|:----|"
    assert tables.markdown(pd.DataFrame(columns=["x", "y"])).splitlines() == ["| x   | y   |", "|-----|-----|"]


def _hand_made_rows(path):
    """The string constants of a Python file (f-strings' parts included) that look like a table row."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and HAND_MADE_ROW.search(node.value)]


def test_no_module_builds_markdown_rows_by_hand():
    paths = [p for p in glob.glob(os.path.join(ROOT, "tinyresnet", "**", "*.py"), recursive=True)
             + glob.glob(os.path.join(ROOT, "experiments", "*.py"))
             if os.path.basename(p) != "tables.py"]
    assert len(paths) > 40
    found = {os.path.relpath(p, ROOT): rows for p in paths if (rows := _hand_made_rows(p))}
    assert not found, f"Markdown rows built by hand (use tinyresnet.tables.markdown): {found}"


def test_a_hand_made_row_is_caught(tmp_path):
    path = tmp_path / "m.py"
    path.write_text('lines = ["| a | b |", "|---|---|"]\nlines.append(f"| {x} | " + " | ".join(y) + " |")\n'
                    'ok = "|".join(labels), rb"|[IWE]\\d"\n')
    assert [line for line, _ in _hand_made_rows(path)] == [1, 1, 2, 2]
