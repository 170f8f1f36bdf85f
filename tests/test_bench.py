import json
import subprocess
import sys

import pytest

from conftest import shared_file, unpadded
from tinyresnet import bench
from tinyresnet.cli import bench_main

TOP = ("ceiling_gflops_fp32", "ceiling_gflops_bf16", "export_ips_b64", "predict_ips_b64",
       "export_latency_p50_ms", "export_latency_p95_ms")
PER_PRECISION = ("ms_per_step", "images_per_s", "gflops", "ceiling_fraction")


@pytest.mark.slow
def test_smoke_bench_times_each_net_in_each_precision_and_prints_json(capsys):
    # No timing assertions: only that every figure is measured and positive.
    assert bench_main(["--smoke", "--json", "--nets=cifar7@0.25", "--spec", "Conv 8, Avg 2, BB 8, FC 10"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert all(result[k] > 0 for k in TOP)
    assert [n["label"] for n in result["nets"]] == ["cifar7 x0.25", "Conv 8, Avg 2, BB 8, FC 10"]
    for net in result["nets"]:
        for policy in bench.PRECISIONS:
            assert all(net[policy][k] > 0 for k in PER_PRECISION), (net["label"], policy)
        assert net["auto"] in bench.PRECISIONS and net["auto_reason"] and net["auto_of_best"] > 0
    assert set(result["fixed_cost"]) == set(bench.PRECISIONS)
    assert result["fixed_cost"]["float32"]["nets"] == 2
    table = unpadded(bench.format_table(result))
    assert "| cifar7 x0.25 | " in table and "fixed cost per step, fp32" in table


@pytest.mark.slow
def test_smoke_bench_with_the_real_pipeline(capsys):
    data = shared_file("tiny-imagenet-200-sub20.zip")
    assert bench_main(["--smoke", "--preset=net1", "--width=0.125", "--precision=float32", f"--data={data}",
                       "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["pipeline_images"] == 10_000 and list(result["fixed_cost"]) == ["float32"]
    for key in ("decode_cache_ips", "augmented_epoch_ips", "pipeline_ips", "pipeline_ratio"):
        assert result[key] > 0, key


def test_the_bench_times_the_step_train_and_evaluate_builds(tmp_path):
    # Weight decay, the metrics and the callbacks are those of training, not a bench-only model.
    from tinyresnet import config
    net = bench.expand_nets(["Conv 8, Avg 2, BB 8, FC 10"])[0]
    trainer = bench._Trainer(net, bench.Settings(batch_size=4), "float32", 10, str(tmp_path))
    assert trainer.trainer.optimizer.weight_decay == config.Config().weight_decay
    import numpy as np
    import tensorflow as tf
    x = np.zeros((4, 64, 64, 3), np.uint8), np.zeros(4, np.int64)
    assert trainer.step(tf.data.Dataset.from_tensors(x).repeat()) > 0
    assert {"top1", "top5"} <= set(trainer.trainer.get_metrics_result())
    assert (tmp_path / "float32-1" / "history.csv").exists()  # the run's own callbacks ran


def test_nets_expand_presets_widths_notation_and_the_committed_search(tmp_path):
    trials = tmp_path / "trials.csv"
    trials.write_text('trial,status,spec,hp_block_dropout,hp_variant\n01,COMPLETED,"Conv 8, Avg 2, BB 8, FC 20",0.25,plain\n'
                      '00,COMPLETED,"Conv 16, Avg 2, BB 16, FC 20",,\n02,FAILED,"Conv 8, FC 20",0.0,residual\n')
    nets = bench.expand_nets(["net1", "net6@0.25", f"search={trials}", "Conv 8, FC 3"], width=0.5)
    assert [(n.label, n.width) for n in nets] == [("net1 x0.5", 0.5), ("net6 x0.25", 0.25), ("trial 00", 1.0),
                                                  ("trial 01", 1.0), ("Conv 8, FC 3", 1.0)]
    assert nets[0].input_shape == (64, 64, 3) and nets[2].spec == "Conv 16, Avg 2, BB 16, FC 20"
    # A trial is timed with the dropout and variant it was searched with (the defaults where none).
    assert (nets[3].block_dropout, nets[3].variant) == (0.25, "plain")
    assert (nets[2].block_dropout, nets[2].variant, nets[2].shortcut) == (0.5, "residual", "pad")
    bad = tmp_path / "bad.csv"
    for text, message in [("a,b\n1,2\n", "no spec, status, trial column"), ("trial,status,spec\n0,FAILED,x\n",
                          "no COMPLETED trial"), ('trial,status,spec\n0,COMPLETED,"Conv 8"\n', "trial 0: ")]:
        bad.write_text(text)
        with pytest.raises(ValueError, match=message):
            bench.expand_nets([f"search={bad}"])
    for item, message in [("net1@x", "width after @"), ("net1@-1", "width after @"), ("net1@inf", "width after @"),
                          ("Conv 8", "not a preset"),
                          (f"search={tmp_path}/none.csv", "no trials.csv")]:
        with pytest.raises(ValueError, match=message):
            bench.expand_nets([item])


def test_the_fixed_cost_is_the_intercept_of_a_least_squares_line():
    nets = [{"train_gflops_per_step": x, "float32": {"ms_per_step": 5 + 2 * x}} for x in (0.5, 1.0, 4.0)]
    fit = bench.fixed_cost(nets, "float32")
    assert fit["fixed_ms_per_step"] == pytest.approx(5) and fit["marginal_gflops"] == pytest.approx(500)
    assert fit["r2"] == pytest.approx(1) and fit["nets"] == 3
    assert bench.fixed_cost(nets[:1], "float32") is None and bench.fixed_cost(nets, "mixed_bfloat16") is None


@pytest.mark.parametrize("argv, message", [
    (["--nets=net9"], "--nets 'net9'"),
    (["--spec=garbage"], "--spec 'garbage'"),
    (["--spec=Conv 8, Avg 128, FC 20"], "pooling a 64x64 feature map by 128 leaves less than 1x1"),
    (["--preset=bogus"], "--preset 'bogus'"),
    (["--nets=net1", "--preset=net1"], "--nets or --preset"),
    (["--steps=0"], "--steps must be a positive number"),
    (["--width=inf"], "--width must be a positive number"),
    (["--seconds=inf"], "--seconds must be a positive number"),
    (["--data=/nowhere.zip"], "--data /nowhere.zip: no such file"),
    (["--precision=float16"], "invalid choice"),
])
def test_bad_bench_options_are_refused_by_the_installed_script(argv, message):
    script = __import__("shutil").which("tinyresnet-bench", path=__import__("os").path.dirname(sys.executable))
    out = subprocess.run([script, *argv], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert "tensorflow" not in out.stderr.lower()  # refused before TensorFlow loads


def test_search_times_each_distinct_net_once_labelled_by_its_search_and_search_name_takes_one(tmp_path,
                                                                                              monkeypatch):
    # Issue 30, defect 6: with a second committed search, `search` timed 63 nets with repeats, `trial 06`
    # beside `trial 0006`, so the README's 15-net bench could not be rebuilt.
    from tinyresnet import bench_nets
    monkeypatch.chdir(tmp_path)
    columns = "trial,status,spec,hp_block_dropout\n"
    for name, rows in (("a", ["06,COMPLETED,\"Conv 8, Avg 2, FC 20\",0.5", "07,COMPLETED,\"Conv 16, Avg 2, FC 20\",0.5"]),
                       ("b", ["0001,COMPLETED,\"Conv 8, Avg 2, FC 20\",0.5", "0002,COMPLETED,\"Conv 8, Avg 2, FC 20\",0.0",
                              "0003,FAILED,\"Conv 32, Avg 2, FC 20\",0.5"])):
        folder = tmp_path / "tuning" / "results" / name
        folder.mkdir(parents=True)
        (folder / "trials.csv").write_text(columns + "\n".join(rows) + "\n")
    every = bench_nets.expand_nets(["search"])
    assert [n.label for n in every] == ["a trial 06", "a trial 07", "b trial 0002"]  # b's 0001 is a's 06
    assert [n.label for n in bench_nets.expand_nets(["search=a"])] == ["trial 06", "trial 07"]
    assert [n.label for n in bench_nets.expand_nets(["search=tuning/results/b/trials.csv"])] == [
        "trial 0001", "trial 0002"]
    with pytest.raises(ValueError, match=r"search=NAME \(a, b\)"):
        bench_nets.expand_nets(["search=c"])
