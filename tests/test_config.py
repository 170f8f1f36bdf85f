import json
import os

import pytest

from tinyresnet import config as config_lib
from tinyresnet.config import Config, ConfigError


def test_defaults_are_the_reference_run():
    cfg = Config()
    assert (cfg.net, cfg.variant, cfg.dataset, cfg.block_dropout, cfg.augment) == \
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
    ({"precision": "fp8"}, r"precision: expected one of auto, float32, mixed_bfloat16, mixed_float16"),
    ({"width": "0"}, r"width must be > 0"),
    ({"block_dropout": "1"}, r"block_dropout must be in \[0, 1\)"),
    ({"epoch": "3"}, r"unknown config key\(s\) epoch; valid keys: net, variant"),
    ({"net": "Conv 8, Foo, FC 10"}, r"item 2 \('Foo'\): unknown layer"),
    ({"distribution": "multi_worker"}, r"'multi_worker' is not supported: Keras 3 .*keras-team/keras#20585"),
])
def test_bad_overrides_are_refused(values, message):
    with pytest.raises(ConfigError, match=message):
        config_lib.override(Config(), values)


def test_override_syntax():
    with pytest.raises(ConfigError, match="expected --key=value or --key value, got '--epochs'"):
        config_lib.parse_overrides(["--epochs"])
    assert config_lib.parse_overrides(["--block-dropout=0.3"]) == {"block_dropout": "0.3"}


def test_both_spellings_of_a_flag_and_bare_booleans():
    # The corrupt-image hint names both; each must be accepted.
    for args in (["--skip_corrupt=true"], ["--skip-corrupt=true"], ["--skip-corrupt"], ["--skip_corrupt"]):
        cfg = config_lib.override(Config(), config_lib.parse_overrides(args))
        assert cfg.skip_corrupt is True, args
    with pytest.raises(ConfigError, match="expected --key=value or --key value, got '--width'"):
        config_lib.parse_overrides(["--width"])


def test_overrides_accept_the_space_separated_form_argparse_users_type():
    assert config_lib.parse_overrides(["--epochs", "3", "--block-dropout", "0.3", "--net=net3"]) == \
        {"epochs": "3", "block_dropout": "0.3", "net": "net3"}
    cfg = config_lib.override(Config(), config_lib.parse_overrides(["--epochs", "3", "--width", "0.25"]))
    assert (cfg.epochs, cfg.width) == (3, 0.25)
    # A value that looks like a negative number is still a value.
    assert config_lib.parse_overrides(["--learning-rate", "-1"]) == {"learning_rate": "-1"}
    with pytest.raises(ConfigError, match="expected --key=value or --key value, got '--epochs'"):
        config_lib.parse_overrides(["--epochs", "--width=0.5"])
    with pytest.raises(ConfigError, match="got '3'"):
        config_lib.parse_overrides(["3"])


def test_a_true_false_key_takes_a_following_true_false_word_and_nothing_else():
    assert config_lib.parse_overrides(["--skip-corrupt", "false"]) == {"skip_corrupt": "false"}
    assert config_lib.parse_overrides(["--augment", "no", "--epochs", "2"]) == {"augment": "no", "epochs": "2"}
    assert config_lib.parse_overrides(["--skip-corrupt", "--epochs", "2"]) == {"skip_corrupt": "true", "epochs": "2"}
    # Not a true/false word: the key means true and the word is read on its own.
    with pytest.raises(ConfigError, match="got 'maybe'"):
        config_lib.parse_overrides(["--skip-corrupt", "maybe"])


def test_an_unknown_key_in_the_space_form_is_refused_by_name():
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) epoch; valid keys"):
        config_lib.override(Config(), config_lib.parse_overrides(["--epoch", "3"]))


def _changed(cfg):
    """The fields of `cfg` that differ from the defaults."""
    return {k: v for k, v in config_lib.to_dict(cfg).items() if v != config_lib.to_dict(Config())[k]}


def test_experiment_files(tmp_path):
    (tmp_path / "a.yaml").write_text("epochs: 4\nvariant: plain\npreset: net3\n")
    (tmp_path / "b.json").write_text(json.dumps({"width": 0.5, "spec": "Conv 8, FC 10"}))
    (tmp_path / "c.py").write_text("from tinyresnet.config import Config\nconfig = Config(net='net3', epochs=7)\n")
    (tmp_path / "d.py").write_text("overrides = {'batch_size': 32, 'augment': False}\n")
    (tmp_path / "e.yaml").write_text("batchsize: 32\n")
    # Every field each file sets, and nothing else.
    assert _changed(config_lib.load_file(str(tmp_path / "a.yaml"))) == {"epochs": 4, "variant": "plain", "net": "net3"}
    assert _changed(config_lib.load_file(str(tmp_path / "b.json"))) == {"width": 0.5, "net": "Conv 8, FC 10"}
    assert _changed(config_lib.load_file(str(tmp_path / "c.py"))) == {"net": "net3", "epochs": 7}
    assert _changed(config_lib.load_file(str(tmp_path / "d.py"))) == {"batch_size": 32, "augment": False}
    example = os.path.join(os.path.dirname(__file__), "..", "experiments", "example.yaml")
    assert _changed(config_lib.load_file(example)) == {"net": "net6", "width": 0.25, "epochs": 3,
                                                       "warmup_epochs": 0.5}
    with pytest.raises(ConfigError, match="unknown config key"):
        config_lib.load_file(str(tmp_path / "e.yaml"))
    with pytest.raises(ConfigError, match="no such experiment file"):
        config_lib.load_file(str(tmp_path / "missing.yaml"))


@pytest.mark.parametrize("name, text, message", [
    ("bad.yaml", "epochs: 3\nwidth: 0.5\n  net: net3\n", r"bad.yaml, line 3: mapping values are not allowed"),
    ("bad.yml", "epochs: 3\nwidth: @x\n", r"bad.yml, line 2: found character '@'"),
    ("bad.json", '{\n  "epochs": 3,\n  "width": 0.5,,\n}\n', r"bad.json, line 3: Expecting property name"),
])
def test_yaml_and_json_syntax_errors_name_the_file_and_line(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=message):
        config_lib.load_file(str(tmp_path / name))


@pytest.mark.parametrize("source, message", [
    ("from tinyresnet.config import Config\nconfig = Config(epochs='3')\n", r"x.py: epochs: expected int, got '3'"),
    ("from tinyresnet.config import Config\nconfig = Config(epoch=3)\n",
     r"x.py, line 2: TypeError: .*unexpected keyword argument 'epoch'"),
    ("overrides = {'epochs': 'three'}\n", r"x.py: epochs: expected int, got 'three'"),
    ("x = 1 +\n", r"x.py.*SyntaxError"),
])
def test_python_experiment_files_with_mistakes_give_clear_errors(tmp_path, source, message):
    (tmp_path / "x.py").write_text(source)
    with pytest.raises(ConfigError, match=message):
        config_lib.load_file(str(tmp_path / "x.py"))


def test_execution_keys_do_not_define_a_run():
    a = config_lib.to_dict(Config(epochs=3))
    b = config_lib.to_dict(Config(epochs=3, verbose=0, checkpoint_steps=5, cache_dir="/x", file_cache=True,
                                  augment_on="model", jit_compile="true"))
    assert config_lib.run_defining(a) == config_lib.run_defining(b)
    assert config_lib.run_defining(a) != config_lib.run_defining(config_lib.to_dict(Config(epochs=4)))
    # A run directory written with the older preset/spec keys is the same run.
    old = {k: v for k, v in a.items() if k != "net"}
    assert config_lib.run_defining({**old, "preset": "net1", "spec": ""}) == config_lib.run_defining(a)


def test_round_trip_through_a_dict():
    cfg = Config(epochs=3, net="Conv 8, FC 10")
    assert config_lib.from_dict(config_lib.to_dict(cfg)) == cfg


@pytest.mark.parametrize("content,message", [
    (b"\xff\xfe\x00not utf-8", r"not a UTF-8 text file"),
    (b"1: 2\n", r"keys must be config names, got 1"),
    (b"epochs: true\n", r"epochs: expected int, got True"),
    (b"learning_rate: .inf\n", r"learning_rate: expected a finite number"),
    (b"net: net1\nwidth: [0.25\n", r"line 3: .*\(while parsing a flow sequence at line 2\)"),
])
def test_more_bad_config_files_are_config_errors_naming_the_file(tmp_path, content, message):
    from tinyresnet import config as config_lib
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(config_lib.ConfigError, match=message) as error:
        config_lib.load_file(str(path))
    assert str(path) in str(error.value)
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    with pytest.raises(config_lib.ConfigError, match="cannot read it"):
        config_lib.load_file(str(folder))
