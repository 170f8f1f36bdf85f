"""Markdown tables (issue 29): one helper, `tinyresnet.tables.markdown`, makes every table the package and
the experiments write."""

import pandas as pd

from tinyresnet import tables


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
