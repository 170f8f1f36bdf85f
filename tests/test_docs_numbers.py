"""Every result a results README quotes is in a committed results file of its folder (issue 30, defect 10:
tuning/README said -0.2 points where leaderboard.md says -0.1, experiments/README a 4.5-point lead where
ladder.md says 4.4)."""

import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A mean ± spread, or a number of points (a difference or a gap), with its sign where it has one.
QUOTED = re.compile(r"(\d+\.\d ± \d+\.\d)|([+\-−]?\d+\.\d)(?=[ -]points?\b)")


def quoted(text):
    """The quoted results of `text`, signs as ASCII: ['58.4 ± 1.2', '-0.1', '4.4', ...]."""
    return [spread or number.replace("−", "-").lstrip("+") for spread, number in QUOTED.findall(text)]


def committed_numbers(folder):
    """Every mean ± spread and every decimal number (with its sign) of the committed Markdown results."""
    found = set()
    for path in glob.glob(os.path.join(ROOT, folder, "results", "**", "*.md"), recursive=True):
        text = open(path).read()
        found |= set(re.findall(r"\d+\.\d ± \d+\.\d", text)) | set(re.findall(r"-?\d+\.\d+", text))
    return found


@pytest.mark.parametrize("folder", ["experiments", "tuning"])
def test_every_result_a_readme_quotes_is_in_a_committed_results_file(folder):
    readme = open(os.path.join(ROOT, folder, "README.md")).read()
    numbers, committed = quoted(readme), committed_numbers(folder)
    assert len(numbers) >= 10
    # "3.9 points below" quotes a committed -3.9: a number without a sign is read either way.
    stale = [n for n in numbers if n not in committed and f"-{n}" not in committed]
    assert not stale, f"{folder}/README.md quotes {stale}, found in no committed {folder}/results/**/*.md"


def test_the_quotes_are_read_with_their_sign():
    assert quoted("ties Net 6 (-0.2 points, within), a 4.5-point lead, 58.4 ± 1.2 %, +4.1 points") == [
        "-0.2", "4.5", "58.4 ± 1.2", "4.1"]
    committed = committed_numbers("tuning")
    assert "-0.2" not in committed and "-0.1" in committed
    assert "4.5" not in committed_numbers("experiments")


def test_every_module_the_readme_layout_names_exists_where_it_says():
    # Issue 30, defect 10: the layout listed experiments/stats.py and experiments/locks.py.
    readme = open(os.path.join(ROOT, "README.md")).read()
    layout = readme[readme.index("## Layout"):]
    rows = [line for line in layout.splitlines() if line.startswith("| `")]
    assert len(rows) >= 8
    for row in rows:
        where, what = row.split(" | ")[0], row.split(" | ", 1)[1]
        first = re.findall(r"`([^`]+)`", where)[0]
        folder = first if first.endswith("/") else os.path.dirname(first)
        for name in re.findall(r"`([\w/]+\.py)`", row):
            path = name if "/" in name else os.path.join(folder, name)
            assert os.path.exists(os.path.join(ROOT, path)), f"README layout: {path} does not exist ({row[:60]})"
