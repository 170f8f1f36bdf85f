import dataclasses
import json

import pytest

from tinyresnet import config as config_lib
from tinyresnet.config import Config, ConfigError


def test_defaults_are_the_reference_run():
    cfg = Config()
    assert (cfg.preset, cfg.variant, cfg.dataset, cfg.block_dropout, cfg.augment) == \
        ("net1", "residual", "tiny_imagenet", 0.5, True)
    assert (cfg.flip_prob, cfg.crop_prob) == (0.5, 0.7)


def test_overrides_are_type_checked():
    cfg = config_lib.override(Config(), config_lib.parse_overrides(
        ["--epochs=3", "--width=0.25", "--precision=mixed_bfloat16", "--augment=false"]))
    assert (cfg.epochs, cfg.width, cfg.precision, cfg.augment) == (3, 0.25, "mixed_bfloat16", False)
    assert isinstance(cfg.epochs, int) and isinstance(cfg.width, float)


@pytest.mark.parametrize("values, message", [
    ({"epochs": "three"}, r"epochs: expected int, got 'three'"),
    ({"epochs": 2.5}, r"epochs: expected an integer"),
    ({"augment": "maybe"}, r"augment: expected true/false"),
    ({"precision": "fp8"}, r"precision: expected one of float32, mixed_bfloat16, mixed_float16"),
    ({"width": "0"}, r"width must be > 0"),
    ({"block_dropout": "1"}, r"block_dropout must be in \[0, 1\)"),
    ({"epoch": "3"}, r"unknown config key\(s\) epoch; valid keys: preset, spec, variant"),
])
def test_bad_overrides_are_refused(values, message):
    with pytest.raises(ConfigError, match=message):
        config_lib.override(Config(), values)


def test_override_syntax():
    with pytest.raises(ConfigError, match="expected --key=value, got '--epochs'"):
        config_lib.parse_overrides(["--epochs"])
    assert config_lib.parse_overrides(["--block-dropout=0.3"]) == {"block_dropout": "0.3"}


def test_experiment_files(tmp_path):
    (tmp_path / "a.yaml").write_text("epochs: 4\nvariant: plain\n")
    (tmp_path / "b.json").write_text(json.dumps({"width": 0.5}))
    (tmp_path / "c.py").write_text("from tinyresnet.config import Config\nconfig = Config(preset='net3', epochs=7)\n")
    (tmp_path / "d.py").write_text("overrides = {'batch_size': 32}\n")
    (tmp_path / "e.yaml").write_text("batchsize: 32\n")
    assert config_lib.load_file(str(tmp_path / "a.yaml")).variant == "plain"
    assert config_lib.load_file(str(tmp_path / "b.json")).width == 0.5
    assert dataclasses.astuple(config_lib.load_file(str(tmp_path / "c.py")))[:1] == ("net3",)
    assert config_lib.load_file(str(tmp_path / "d.py")).batch_size == 32
    with pytest.raises(ConfigError, match="unknown config key"):
        config_lib.load_file(str(tmp_path / "e.yaml"))
    with pytest.raises(ConfigError, match="no such experiment file"):
        config_lib.load_file(str(tmp_path / "missing.yaml"))


def test_round_trip_through_a_dict():
    cfg = Config(epochs=3, spec="Conv 8, FC 10")
    assert config_lib.from_dict(config_lib.to_dict(cfg)) == cfg
