import pandas as pd

from conftest import copy_run, unpadded
from fixtures import tiny_config
from tinyresnet import report, train


def test_report_compares_a_residual_net_and_its_plain_twin(tmp_path, capsys, folder_zip, tiny_run):
    # The residual run is the session's tiny_run (one epoch of one step), in a folder named for the table.
    runs = [str(copy_run(tiny_run[0], tmp_path / "residual")), str(tmp_path / "plain")]
    train.train_and_evaluate(tiny_config(folder_zip, variant="plain", steps_per_epoch=1), runs[1])
    table = report.compare(runs, str(tmp_path / "out"))
    assert table["run"].tolist() == ["residual", "plain"]
    assert table["variant"].tolist() == ["residual", "plain"]
    assert (table["epochs"] == 1).all() and (table["params"] == table["params"][0]).all()
    on_disk = pd.read_csv(tmp_path / "out" / "comparison.csv")
    assert list(on_disk.columns) == list(report.TABLE_COLUMNS)
    markdown = unpadded((tmp_path / "out" / "comparison.md").read_text())
    assert markdown.startswith("| run | variant | train_top1") and "| plain | plain |" in markdown
    assert (tmp_path / "out" / "comparison.png").stat().st_size > 10_000

    from tinyresnet.cli import report_main
    assert report_main(runs + ["--out", str(tmp_path / "cli")]) == 0
    assert "| residual | residual |" in unpadded(capsys.readouterr().out)
    assert report_main([str(tmp_path / "missing")]) == 2
    assert "no results.json" in capsys.readouterr().err
