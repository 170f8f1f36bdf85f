import json

import pytest

from conftest import shared_file
from tinyresnet import bench
from tinyresnet.cli import bench_main

KEYS = ("ceiling_gflops_fp32", "ceiling_gflops_bf16", "train_ips_fp32", "train_ips_bf16",
        "train_ceiling_fraction_fp32", "train_ceiling_fraction_bf16", "export_ips_b64", "predict_ips_b64",
        "export_latency_p50_ms", "export_latency_p95_ms", "settings")


@pytest.mark.slow
def test_smoke_bench_prints_every_figure_as_json(capsys):
    # No timing assertions: only that every figure is measured and positive.
    assert bench_main(["--smoke", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in KEYS:
        assert key in result, key
    assert all(result[k] > 0 for k in KEYS if k != "settings")
    assert result["settings"]["preset"] == "cifar7"
    assert "| train float32 (in memory) |" in bench.format_table(result)


@pytest.mark.slow
def test_smoke_bench_with_the_real_pipeline(capsys):
    data = shared_file("tiny-imagenet-200-sub20.zip")
    assert bench_main(["--smoke", "--preset=net1", "--width=0.125", f"--data={data}", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["pipeline_images"] == 10_000
    for key in ("decode_cache_ips", "augmented_epoch_ips", "pipeline_ips", "pipeline_ratio"):
        assert result[key] > 0, key
