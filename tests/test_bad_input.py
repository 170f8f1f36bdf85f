"""Every console script, with an invalid value of each option (and of each search-file key), on an
otherwise valid tiny command: refused in one line naming the option, exit 2, no traceback, before
TensorFlow loads and before anything is written.

Each case runs in a process of its own: one driver process imports the commands' modules and those their
checks use once (CHECKS: they load no TensorFlow, which test_the_checks_load_no_tensorflow checks in a fresh
interpreter) and forks a child per
case, which runs the command as `python -c` would, with its own working folder, standard streams, exit code
and exit handlers. Starting one interpreter instead of one per case makes the sweep cost a few seconds.
Nothing here imports TensorFlow.
"""

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import zipfile

import pytest
import yaml

from tinyresnet import runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = "Conv 8, BB 8, Avg 4, FC 3"
MAINS = {"train": ("tinyresnet.cli", "train_main"), "export": ("tinyresnet.cli", "export_main"),
         "predict": ("tinyresnet.cli", "predict_main"), "report": ("tinyresnet.cli", "report_main"),
         "bench": ("tinyresnet.cli", "bench_main"), "tune": ("tinyresnet.tuning.command", "main")}
# The modules the commands and their checks import: none loads TensorFlow (test_the_checks_load_no_tensorflow
# imports them in a fresh interpreter). The sweep's driver imports them once, before it forks the cases.
CHECKS = ("tinyresnet.cli", "tinyresnet.options", "tinyresnet.config", "tinyresnet.predict", "tinyresnet.data.files",
          "tinyresnet.bench_nets", "tinyresnet.tuning.command", "tinyresnet.runner", "tinyresnet.processes",
          "tinyresnet.tuning.space", "yaml")
# Reads [[module, function, argv, folder, stdout file, stderr file], ...] on stdin; runs each case in a child
# forked from this process, as `python -c "sys.exit(main())" ARGV` in FOLDER would run it, and prints
# [exit code, ...]. A child's last line on stdout names the heavy modules it loaded. This process imports
# CHECKS and the commands' modules before forking and must not have loaded TensorFlow or Keras itself.
DRIVER = r"""
import atexit, importlib, json, os, signal, sys, traceback
checks, cases = json.load(sys.stdin)
for name in checks:
    importlib.import_module(name)
mains = {(module, function): getattr(importlib.import_module(module), function) for module, function, *_ in cases}
heavy = [m for m in ("tensorflow", "keras") if m in sys.modules]
assert not heavy, f"the driver loaded {heavy} by importing the commands"


def child(main, argv, folder, out, err):
    signal.alarm(120)
    os.chdir(folder)
    for fd, path in ((1, out), (2, err)):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
    sys.argv = ["-c", *argv]
    atexit.register(lambda: print("\nloaded:", *[m for m in ("tensorflow", "keras") if m in sys.modules]))
    try:
        code = main()
    except SystemExit as e:
        code = e.code
    except BaseException:
        traceback.print_exc()
        code = 1
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


running, codes, jobs = {}, [None] * len(cases), max(2, os.cpu_count() or 1)
for index, (module, function, argv, folder, out, err) in enumerate(cases):
    while len(running) >= jobs:
        pid, status = os.wait()
        codes[running.pop(pid)] = os.waitstatus_to_exitcode(status)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        child(mains[module, function], argv, folder, out, err)
    running[pid] = index
while running:
    pid, status = os.wait()
    codes[running.pop(pid)] = os.waitstatus_to_exitcode(status)
print(json.dumps(codes))
"""
SEARCH = {"base": {"dataset": "folder", "epochs": 1}, "search": {"max_trials": 2, "seed": 0},
          "space": {"stages": 1, "blocks": 1, "base_width": 8}}


@dataclasses.dataclass(frozen=True)
class Case:
    script: str
    args: tuple  # formatted with the paths of `world` and {out}, this case's own folder (never made)
    needle: str  # what the error line names: the option, key or value
    search: tuple = ()  # ((part, key, value), ...): a search file of this case, {search} in `args`

    @property
    def id(self):
        changed = [f"{part}.{key}={value}" for part, key, value in self.search]
        return f"{self.script} {' '.join(changed + list(self.args))}"


def train(*extra, needle):
    return Case("train", ("--dataset=folder", "--data={data}", f"--spec={SPEC}", "--epochs=1",
                          "--run-dir={out}/run") + extra, needle)


def tune(*extra, needle, search=()):
    return Case("tune", ("--search={search}", "--project-dir={out}/project") + extra, needle, search)


CONFIG_KEYS = [  # every key of the config, as tinyresnet-train (and a search's --key=value) takes it
    ("--epochs=0", "epochs"), ("--epochs=two", "epochs"), ("--epochs=true", "epochs"),
    ("--batch_size=-1", "batch_size"), ("--steps_per_epoch=-1", "steps_per_epoch"),
    ("--width=0", "width"), ("--width=nan", "width"), ("--learning_rate=inf", "learning_rate"),
    ("--learning_rate=-1", "learning_rate"), ("--momentum=1", "momentum"), ("--momentum=-0.5", "momentum"),
    ("--block_dropout=1", "block_dropout"), ("--flip_prob=1.5", "flip_prob"), ("--crop_prob=-0.1", "crop_prob"),
    ("--validation_fraction=0", "validation_fraction"), ("--label_smoothing=1", "label_smoothing"),
    ("--weight_decay=-1", "weight_decay"), ("--warmup_epochs=-1", "warmup_epochs"),
    ("--checkpoint_steps=-1", "checkpoint_steps"), ("--train_eval_images=0", "train_eval_images"),
    ("--seed=-1", "seed"), ("--seed=4294967296", "seed"), ("--seed=99999999999", "seed"), ("--verbose=3", "verbose"),
    ("--optimizer=adam", "optimizer"), ("--schedule=linear", "schedule"), ("--precision=float8", "precision"),
    ("--distribution=multi_worker", "distribution"), ("--augment_on=gpu", "augment_on"),
    ("--jit_compile=maybe", "jit_compile"),
    ("--shortcut=none", "shortcut"), ("--variant=dense", "variant"), ("--augment=maybe", "augment"),
    ("--skip_corrupt=maybe", "skip_corrupt"), ("--file_cache=2", "file_cache"),
    ("--cache_dir=/proc/cache", "cache_dir"), ("--net=Conv 8, Foo 2, FC 3", "net"), ("--nosuchkey=1", "nosuchkey"),
]

CASES = [
    # tinyresnet-train: its own options, then every config key.
    train("--preset=net99", needle="--preset"), train("--preset=net1", needle="--spec"),
    train("--spec=Conv 8, Foo 2, FC 3", needle="--spec"), train("--spec={binary}", needle="--spec"),
    train("--data=/nowhere.zip", needle="data"), train("--data={notzip}", needle="data"),
    train("--data={truncated}", needle="data"), train("--dataset=imagenet", needle="--dataset"),
    Case("train", (f"--spec={SPEC}", "--dataset=folder", "--run-dir={out}/run"), "data"),
    train("--config=/nowhere.yaml", needle="--config"), train("--config={folder}", needle="--config"),
    train("--config={binary}", needle="--config"),
    train("--run-dir=/proc/run", needle="--run-dir"), train("--run-dir={notzip}", needle="--run-dir"),
    train("--export=/proc/exports", needle="--export"), train("--export={notzip}", needle="--export"),
    train("--summary", needle="--summary"), train("--run-dir=", needle="--run-dir"),
    Case("train", ("--list-presets", "--epochs=3"), "--list-presets"), Case("train", ("--preset=net1", "--summary", "--overwrite"), "--overwrite"),
    train("--run-dir", needle="--run-dir"),
    *[train(arg, needle=key) for arg, key in CONFIG_KEYS],
    # tinyresnet-export
    Case("export", ("/nowhere", "--out={out}/exports"), "/nowhere"),
    Case("export", ("{folder}", "--out={out}/exports"), "model.keras"),
    Case("export", ("{run}", "--out=/proc/exports"), "--out"), Case("export", ("{run}", "--out={notzip}"), "--out"),
    Case("export", ("{run}", "--out={out}/exports", "--name=a/b"), "--name"),
    Case("export", ("{run}", "--out={out}/exports", "--name=.."), "--name"),
    Case("export", ("{run}", "--out={out}/exports", "--version=0"), "--version"),
    Case("export", ("{run}", "--out={out}/exports", "--version=one"), "--version"),
    Case("export", ("{run}", "--out={out}/exports", "--overwrite=yes"), "--overwrite"),
    # tinyresnet-predict
    Case("predict", ("/nowhere", "{image}"), "/nowhere"),
    Case("predict", ("{model}", "{emptyfolder}"), "no image files"),
    Case("predict", ("{model}", "{image}", "--output={folder_csv}"), "--output"),
    Case("predict", ("{model}", "{image}", "--output=/proc/o.csv"), "--output"),
    Case("predict", ("{model}", "{image}", "--output={out}/o.csv"), "--output"),
    Case("predict", ("{model}", "{image}", "--output={out_parent}/o.txt"), "--output"),
    Case("predict", ("{model}", "{image}", "--top=0"), "--top"),
    Case("predict", ("{model}", "{image}", "--top=4"), "--top"),
    Case("predict", ("{model}", "{image}", "--top=x"), "--top"),
    Case("predict", ("{model}", "{image}", "--batch-size=0"), "--batch-size"),
    Case("predict", ("{model}", "{image}", "--batch-size=x"), "--batch-size"),
    # tinyresnet-report
    Case("report", ("/nowhere", "--out={out}/report"), "/nowhere"),
    Case("report", ("{folder}", "--out={out}/report"), "results.json"),
    Case("report", ("{run}", "--out=/proc/report"), "--out"), Case("report", ("{run}", "--out={notzip}"), "--out"),
    Case("report", ("{run}", "--out={out}/report", "--names", "a", "b"), "--names"),
    # tinyresnet-bench
    *[Case("bench", (arg,), arg.split("=")[0]) for arg in (
        "--nets=net9", "--nets=net1@x", "--preset=bogus", "--spec=Conv 8, Foo 2, FC 3", "--width=0", "--width=nan",
        "--width=100", "--precision=float16", "--batch-size=0", "--batch-size=x", "--steps=0", "--seconds=inf",
        "--seconds=0", "--repeats=0", "--data=/nowhere.zip", "--data={truncated}", "--data={notzip}")],
    Case("bench", ("--spec={binary}",), "--spec"), Case("bench", ("--nets=search=",), "--nets"),
    # tinyresnet-tune: the search's options
    tune("--search=/nowhere.yaml", needle="--search"), tune("--search={folder}", needle="--search"),
    tune("--search={binary}", needle="--search"), tune("--data=/nowhere.zip", needle="data"),
    tune("--data={truncated}", needle="data"), tune("--oracle=bogus", needle="--oracle"),
    tune("--role=chief", "--oracle=0.0.0.0:99999", needle="--oracle"),
    tune("--role=chief", "--oracle=localhost:http", needle="--oracle"), tune("--role=chief", needle="--oracle"),
    tune("--oracle=127.0.0.1:8470", needle="--oracle"), tune("--role=boss", needle="--role"),
    tune("--max-trials=0", needle="--max-trials"), tune("--max-trials=-1", needle="--max-trials"),
    tune("--max-trials=x", needle="--max-trials"), tune("--oracle=hyperband", "--max-trials=3", needle="--max-trials"),
    tune("--max-hours=0", needle="--max-hours"), tune("--max-hours=-1", needle="--max-hours"),
    tune("--max-hours=nan", needle="--max-hours"), tune("--max-hours=inf", needle="--max-hours"),
    tune("--oracle-timeout=-5", "--role=worker", "--oracle=127.0.0.1:1", needle="--oracle-timeout"),
    tune("--oracle-timeout=30", needle="--oracle-timeout"),
    tune("--workers=-1", needle="--workers"), tune("--workers=2", "--role=chief", "--oracle=127.0.0.1:1",
                                                   needle="--workers"),
    tune("--tuner-id=w1", needle="--tuner-id"), tune("--workers=2", "--tuner-id=w1", needle="--tuner-id"),
    tune("--role=worker", "--oracle=127.0.0.1:1", "--tuner-id=a/b", needle="--tuner-id"),
    tune("--role=worker", "--oracle=127.0.0.1:1", "--max-trials=3", needle="--max-trials"),
    tune("--project-dir=/proc/project", needle="--project-dir"), tune("--project-dir={notzip}", needle="--project-dir"),
    tune("--reference=net1,net99", needle="--reference"), tune("--seed=-1", needle="seed"),
    tune("--epochs=0", needle="epochs"), tune("--search", needle="--search"),
    # tinyresnet-tune: the search file's keys
    *[tune(needle=needle, search=(change,)) for change, needle in [
        (("base", "seed", -1), "seed"), (("base", "seed", 2**32), "seed"), (("base", "width", float("nan")), "width"),
        (("base", "data", "/nowhere.zip"), "data"), (("base", "epochs", 0), "epochs"),
        (("search", "seed", -1), "search.seed"), (("search", "seed", 2**32), "search.seed"),
        (("search", "seed", "x"), "search.seed"), (("search", "oracle", "grid"), "search.oracle"),
        (("search", "max_trials", 0), "search.max_trials"), (("search", "executions_per_trial", 2),
                                                              "search.executions_per_trial"),
        (("search", "hyperband_iterations", 0), "search.hyperband_iterations"),
        (("search", "reference_width", -1), "search.reference_width"),
        (("search", "reference_width", float("nan")), "search.reference_width"),
        (("search", "nosuchkey", 1), "nosuchkey"), (("budget", "max_params", 0), "budget.max_params"),
        (("budget", "max_gflops", float("inf")), "budget.max_gflops"), (("budget", "nosuchkey", 1), "nosuchkey"),
        (("space", "stages", {"min": 3, "max": 1}), "space.stages"), (("space", "stages", 0), "space.stages"),
        (("space", "pool", ["min"]), "space.pool"), (("space", "block_dropout", [1.0]), "space.block_dropout"),
        (("space", "growth", [float("nan")]), "space.growth"), (("space", "nosuchkey", 1), "nosuchkey"),
        ((None, "nosuchpart", 1), "nosuchpart"), ((None, "search", 5), "search: expected a mapping")]],
    # tinyresnet-tune report
    Case("tune", ("report", "/nowhere", "--out={out}/results"), "/nowhere"),
    Case("tune", ("report", "{project}", "--out=/proc/results"), "--out"),
    Case("tune", ("report", "{project}", "--out={notzip}"), "--out"),
    Case("tune", ("report", "{project}", "--out={out}/results", "--retrain-best=0"), "--retrain-best"),
    Case("tune", ("report", "{project}", "--out={out}/results", "--retrain-best=x"), "--retrain-best"),
    Case("tune", ("report", "{project}", "--out={out}/results", "--export={out}/exports"), "--export"),
    Case("tune", ("report", "{project}", "--out={out}/results", "--retrain-best=1", "--export=/proc/x"), "--export"),
    # tinyresnet-tune confirm
    Case("tune", ("confirm", "/nowhere", "--epochs=1"), "/nowhere"), Case("tune", ("confirm", "{project}"), "--epochs"),
    *[Case("tune", ("confirm", "{project}", "--epochs=1", arg), arg.split("=")[0]) for arg in (
        "--epochs=0", "--epochs=x", "--top=0", "--seeds=0", "--workers=0", "--steps-per-epoch=-1",
        "--reference=net99")],
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The valid inputs the commands read, made without TensorFlow (no command here gets to decode them)."""
    root = tmp_path_factory.mktemp("world")
    paths = {key: str(root / name) for key, name in [
        ("data", "d.zip"), ("truncated", "truncated.zip"), ("notzip", "photo.jpg"), ("binary", "binary.bin"),
        ("folder", "folder"), ("folder_csv", "D.csv"), ("emptyfolder", "empty"), ("model", "model/1"),
        ("run", "run"), ("project", "project"), ("image", "photo.jpg"), ("out_parent", "outputs")]}
    with zipfile.ZipFile(paths["data"], "w") as z:
        for name in ("a", "b", "c"):
            z.writestr(f"train/{name}/0.jpg", b"\xff\xd8 not decoded by any case")
    with open(paths["data"], "rb") as f:
        whole = f.read()
    (root / "truncated.zip").write_bytes(whole[:len(whole) // 2])
    (root / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0 neither a zip nor a folder")
    (root / "binary.bin").write_bytes(bytes(range(256)))
    for name in ("folder", "D.csv", "empty", "model/1", "run", "project", "outputs"):
        (root / name).mkdir(parents=True)
    (root / "model/1/saved_model.pb").write_bytes(b"")
    (root / "model/1/metadata.json").write_text('{"class_names": ["a", "b", "c"]}')
    for name in (".tinyresnet-run", "model.keras", "results.json", "config.json"):
        (root / "run" / name).write_text("{}")
    (root / "project/oracle.json").write_text("{}")
    return root, paths


def _search_file(folder, paths, changes):
    values = {part: dict(keys) for part, keys in SEARCH.items()}
    values["base"]["data"] = paths["data"]
    for part, key, value in changes:
        if part is None:
            values[key] = value
        else:
            values.setdefault(part, {})[key] = value
    path = os.path.join(folder, "search.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(values, f)
    return path


def _prepare(case, world):
    """(module, function, argv, folder, stdout file, stderr file) of a case; its folder holds only its search file."""
    root, paths = world
    folder = root / "cases" / str(id(case))
    folder.mkdir(parents=True)
    streams = root / "streams"
    streams.mkdir(exist_ok=True)
    out = str(folder / "out")  # never made: every output of the case is in it
    names = {**paths, "out": out,
             "search": _search_file(str(folder), paths, case.search)}
    argv = [arg.format(**names) for arg in case.args]
    module, function = MAINS[case.script]
    return [module, function, argv, str(folder), str(streams / f"{id(case)}.out"), str(streams / f"{id(case)}.err")]


@pytest.fixture(scope="module")
def sweep(request, world):
    """`{id(case): (CompletedProcess, names in the case's folder)}` of the cases this session selects, run on
    first use."""
    selected = [item.callspec.params["case"] for item in request.session.items
                if getattr(item, "originalname", None) == "test_an_invalid_value_is_refused_in_one_line_naming_it"
                and hasattr(item, "callspec")]
    prepared = [_prepare(case, world) for case in selected]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    driver = subprocess.run([sys.executable, "-c", DRIVER], input=json.dumps([CHECKS, prepared]), capture_output=True,
                            text=True, timeout=600, env=env, cwd=str(world[0]))
    assert driver.returncode == 0, driver.stderr[-3000:]
    results = {}
    for case, (_, _, argv, folder, out, err), code in zip(selected, prepared, json.loads(driver.stdout)):
        with open(out) as o, open(err) as e:
            completed = subprocess.CompletedProcess(argv, code, o.read(), e.read())
        results[id(case)] = (completed, os.listdir(folder))
    return results


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_an_invalid_value_is_refused_in_one_line_naming_it(case, sweep):
    result, written = sweep[id(case)]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith("error: ") and case.needle in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout.rstrip().splitlines()[-1] == "loaded:", "refused only after TensorFlow loaded"
    assert written == ["search.yaml"], f"wrote {written} before refusing"  # the case's search file only


def _parser_of(main, monkeypatch, argv=()):
    """The parser `main` builds: caught as it starts to parse."""
    from tinyresnet import options

    class Caught(Exception):
        pass

    def catch(self, *args, **kwargs):
        raise Caught(self)
    with monkeypatch.context() as patch:
        patch.setattr(options.Parser, "parse_args", catch)
        patch.setattr(options.Parser, "parse_known_args", catch)
        with pytest.raises(Caught) as caught:
            main(list(argv))
    return caught.value.args[0]


def test_the_cases_cover_every_option_of_every_script(monkeypatch):
    from tinyresnet import cli, config
    from tinyresnet.tuning import command
    mains = {"train": cli.train_main, "export": cli.export_main, "predict": cli.predict_main,
             "report": cli.report_main, "bench": cli.bench_main, "tune": command.main,
             "tune report": lambda argv: command.main(["report"]), "tune confirm": lambda argv: command.main(["confirm"])}
    missing = []
    for name, main in mains.items():
        script, _, sub = name.partition(" ")
        given = " ".join(arg for case in CASES if case.script == script and
                         (case.args[0] == sub if sub else case.args[0] not in ("report", "confirm"))
                         for arg in case.args)
        for action in _parser_of(main, monkeypatch)._actions:
            option = (action.option_strings or [action.metavar or action.dest])[0]
            if action.nargs == 0 and option not in ("--summary", "--overwrite") or action.help == argparse.SUPPRESS:
                continue  # a flag (those that may conflict are tried), or an option only a launcher passes
            if option.startswith("--") and option not in given or not option.startswith("-") and not given:
                missing.append(f"{name} {option}")
    missing += [f"train --{key}" for key in config.fields() if key not in ("net", "data", "dataset")
                and not any(f"--{key}=" in arg for case in CASES if case.script == "train" for arg in case.args)]
    missing += [f"search file {part}" for part in ("base", "search", "budget", "space")
                if not any(change[0] == part for case in CASES for change in case.search)]
    assert not missing, missing


def test_the_checks_load_no_tensorflow():
    code = ("import importlib, sys\n"
            f"for name in {CHECKS!r}:\n"
            "    importlib.import_module(name)\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": ROOT})
    assert out.stdout.strip() == "[]", out.stderr[-2000:]


def test_a_truncated_zip_is_named_as_one_not_as_something_else(world):
    from tinyresnet.data.files import DataError, FileTree
    _, paths = world
    with pytest.raises(DataError, match=f"{paths['truncated']}: a damaged or truncated zip archive"):
        FileTree(paths["truncated"])
    with pytest.raises(DataError, match=f"{paths['notzip']}: neither a folder nor a zip archive"):
        FileTree(paths["notzip"])


def test_seeds_of_more_than_32_bits_are_refused_with_the_config():
    from tinyresnet import config
    for seed in (-1, 2**32, 99999999999):
        with pytest.raises(config.ConfigError, match=r"seed must be in \[0, 4294967295\]"):
            config.override(config.Config(), {"seed": seed})
    assert config.override(config.Config(), {"seed": 2**32 - 1}).seed == 2**32 - 1


def test_an_output_folder_that_cannot_be_made_is_found_without_writing(tmp_path):
    from tinyresnet import options
    with pytest.raises(options.UsageError, match="--out /proc/x: cannot write in /proc"):
        options.output_folder("--out", "/proc/x")
    (tmp_path / "file").write_text("")
    with pytest.raises(options.UsageError, match="is not a folder"):
        options.output_folder("--out", str(tmp_path / "file" / "x"))
    assert options.output_folder("--out", str(tmp_path / "a" / "b")) and os.listdir(tmp_path) == ["file"]
    assert options.output_file("--output", str(tmp_path / "O.CSV"), (".csv", ".json"))
    assert os.listdir(tmp_path) == ["file"]
    with pytest.raises(options.UsageError, match="port in 1..65535"):
        options.host_port("--oracle", "0.0.0.0:99999")


def test_what_a_fresh_eyes_hunt_found_in_the_checks(tmp_path, monkeypatch):
    # An IPv6 chief as URLs write it; ~ in --data=~/x.zip, which a shell leaves as it is; a diverged search
    # whose trials all ran in float32 (auto on this CPU) is not told to use float32.
    import os
    from tinyresnet import config as config_lib, options
    from tinyresnet.tuning import command, confirm
    assert options.host_port("--oracle", "[::1]:8470") == ("::1", 8470)
    assert config_lib.from_dict({"data": "~/x.zip"}).data == os.path.expanduser("~/x.zip")
    for trial in ("0", "1"):
        (tmp_path / f"trial_{trial}").mkdir()
        runs.write_json(str(tmp_path / f"trial_{trial}" / "trial.json"),
                        {"trial_id": trial, "status": "FAILED", "message": "diverged (loss became nan at epoch 0)"})
        runs.write_json(str(tmp_path / f"trial_{trial}" / runs.CONFIG), {"precision": "float32"})
    hint = command._diverged_hint(str(tmp_path), "auto")
    assert "lower base.learning_rate" in hint and "float32" not in hint
    runs.write_json(str(tmp_path / "trial_1" / runs.CONFIG), {"precision": "mixed_bfloat16"})
    assert "base.precision: float32" in command._diverged_hint(str(tmp_path), "auto")
    (tmp_path / "confirm").mkdir()
    assert confirm.record_seeds(str(tmp_path), 4) == 4 and confirm.record_seeds(str(tmp_path), 2) == 4
