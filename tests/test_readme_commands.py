"""Every command the READMEs show is run (with small settings where said) or listed with why not.

The commands are the lines of the READMEs' fenced `bash` blocks. `PLAN` says,
for each, how it is checked; a command added to a README without a plan, or a
plan whose command left the README, fails `test_every_readme_command_has_a_plan`.
Every flag a command uses must be one its script's real `--help` knows.
"""

import os
import re
import shlex
import subprocess
import sys
from typing import NamedTuple, Tuple

import pytest

from conftest import SHARED
from fixtures import class_folder_files, tiny_imagenet_files, write_zip

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
READMES = ("README.md", "tinyresnet/README.md", "experiments/README.md", "experiments/PERFORMANCE.md",
           "experiments/GPU.md", "tuning/README.md", "exported_models/README.md")
# One epoch of two steps, and the final train accuracy on 64 images instead of 5,000 (9 s of net1 at width 0.25).
SMOKE = ("--epochs=1", "--steps-per-epoch=2", "--train-eval-images=64")


class Run(NamedTuple):
    """Run the command in a scratch folder, with `extra` arguments appended (later flags win)."""
    extra: Tuple[str, ...] = ()
    needs_shared: bool = False


class Elsewhere(NamedTuple):
    """Run, with small settings, by the named test."""
    test: str


class NotRun(NamedTuple):
    why: str


SEARCH_HOURS = "a search of about an hour or more on 2 cores; test_user_path.py runs tinyresnet-tune on fixtures"
PLAN = {
    "bash experiments/quickstart.sh": Elsewhere("test_user_path.py::test_8_the_quickstart_end_to_end_with_a_few_steps"),
    "bash .ci/run": NotRun("it is CI itself: it installs the package and runs this test suite"),
    "python -m pytest -q -n 2 --dist loadfile tests": NotRun("the test command: it is what runs this test"),
    "tinyresnet-train --preset=net1 --data=../shared/data/tiny-imagenet-200-sub20.zip --width=0.25 --epochs=3":
        Run(SMOKE + ("--run-dir=runs/net1-quickstart",), needs_shared=True),
    'tinyresnet-train --spec="(Conv 32) x 2, Avg 2, BB 64, Avg 2, FC 10" --dataset=folder --data=cifar.zip '
    '--variant=plain': Run(SMOKE + ("--batch-size=8", "--width=0.25")),
    "tinyresnet-train --config=experiments/example.yaml --data=../shared/data/tiny-imagenet-200-sub20.zip --epochs=5":
        Run(SMOKE, needs_shared=True),
    "tinyresnet-train --preset=net3 --summary": Run(),
    "tinyresnet-train --list-presets": Run(),
    "tinyresnet-tune --search=tuning/tiny20_depth_width.yaml --reference=net1,net6": NotRun(SEARCH_HOURS),
    "tinyresnet-tune --search=tuning/tiny20_depth_width.yaml --oracle=bayesian --max-trials=30 --max-hours=4":
        NotRun(SEARCH_HOURS),
    "tinyresnet-tune --search=tuning/tiny20_depth_width.yaml --workers=2": NotRun(
        SEARCH_HOURS + "; tests/test_tuning_distributed.py runs a chief and 2 workers on 127.0.0.1"),
    "tinyresnet-tune --search=tuning/tiny20_hyperband.yaml --reference=net1,net6 --workers=2": NotRun(
        "the committed search: about 40 minutes on 2 cores; tests/test_tuning_distributed.py runs --workers=2"),
    "tinyresnet-tune confirm runs/tune/tiny20_hyperband --epochs=10 --top=3 --seeds=3 --workers=2": Elsewhere(
        "test_tuning_confirm.py::test_confirm_retrains_the_best_nets_and_a_reference_with_seeds_then_the_best_at_"
        "equal_flops (2 nets, a reference, 2 seeds, 2 workers, on fixtures); here: 18 runs of 10 to 18 epochs, hours on 2 cores"),
    "tinyresnet-tune report runs/tune/tiny20_depth_width --retrain-best 30": Elsewhere(
        "test_user_path.py::test_6_tune_two_trials_then_retrain_the_best (a 2-trial project, 1 epoch)"),
    "tinyresnet-tune --search=tuning/tiny20_v3.yaml --reference=net1,net6,net1_no_dropout --workers=2": NotRun(
        "search v3: 69 trials, 261 epochs, hours on 2 cores; tests/test_tuning_space.py drives its oracle through every "
        "bracket, test_tuning_confirm.py runs arm and notation references end to end"),
    "tinyresnet-tune confirm runs/tune/tiny20_v3 --epochs=9 --top=3 --seeds=3 --reference=net1,net6,net1_no_dropout "
    "--workers=2": NotRun("its confirmation: 27 runs of 9 epochs and more, hours on 2 cores; test_tuning_confirm.py "
                          "confirms with arm and notation references on fixtures"),
    "python -m experiments.run resnet_vs_convnet": NotRun("6 runs of about 10 minutes each on 2 cores; "
                                                          "tests/test_experiments.py runs the runner on fixtures"),
    "tinyresnet-export runs/net1-quickstart": Run(),
    "tinyresnet-train ... --export": NotRun("'...' stands for any training arguments; "
                                            "test_export.py trains with --export"),
    'tinyresnet-predict exported_models/net1/1 photos/ "more/*.png" --output predictions.csv': Run(),
    "tinyresnet-bench --nets=net1@0.25,search=tiny20_depth_width --data=../shared/data/tiny-imagenet-200-sub20.zip":
        NotRun("a benchmark of minutes, to be run on a quiet machine; tests/test_bench.py runs --smoke"),
    "python -m experiments.run all": NotRun("every claim: hours of training"),
    "python -m experiments.run table1 --arms=net2,net3": NotRun("4 runs of about 10 minutes each"),
    "python -m experiments.run all --report-only": Elsewhere(
        "test_user_path.py::test_7_report_only_on_a_copy_of_the_committed_experiments_keeps_every_result"),
    "python -m experiments.run all --scale=cpu_w025": NotRun("12 runs of about 10 minutes each on 2 cores; "
                                                             "tests/test_experiments.py runs the runner on fixtures"),
    "python -m experiments.run all --workers=2": NotRun(
        "every claim: hours of training; tests/test_experiments.py runs --workers=2 on fixtures"),
    "python -m experiments.run all --shard=$SLURM_ARRAY_TASK_ID/4": NotRun(
        "a recipe for a job array on machines sharing the runs folder; tests/test_experiments.py runs two sharded "
        "runners on fixtures, one killed mid-run"),
    "python -m experiments.run all --scale=paper": NotRun("full width, 200 classes, 30 epochs: for a GPU, "
                                                          "and it downloads Tiny ImageNet (248 MB)"),
    # experiments/GPU.md: recipes for GPU machines.
    'pip install -e ".[test]"': NotRun("installs the package into the environment, as .ci/run does"),
    'pip install "tensorflow[and-cuda]"': NotRun("installs CUDA and cuDNN (gigabytes), for an NVIDIA GPU"),
    "python -c \"import tensorflow as tf; print(tf.config.list_physical_devices('GPU'))\"": Run(),
    "python -m experiments.run all --scale=paper --distribution=mirrored": NotRun(
        "the paper scale on every GPU of a host; tests/test_experiments.py checks that --distribution reaches every "
        "run's config"),
    "CUDA_VISIBLE_DEVICES=0 python -m experiments.run all --scale=paper --shard=0/2 &": NotRun(
        "the paper scale, one runner per GPU; tests/test_experiments.py runs two sharded runners on fixtures"),
    "CUDA_VISIBLE_DEVICES=1 python -m experiments.run all --scale=paper --shard=1/2 &": NotRun(
        "the paper scale, one runner per GPU; tests/test_experiments.py runs two sharded runners on fixtures"),
    "python -m experiments.run all --scale=paper --runs-dir=/shared/runs --results-dir=/shared/results "
    "--shard=$SLURM_ARRAY_TASK_ID/4": NotRun(
        "a recipe for a job array of GPU hosts sharing the runs folder; tests/test_experiments.py runs two sharded "
        "runners on fixtures, one killed mid-run"),
    "python experiments/readme_numbers.py --measure bench_wide": NotRun(
        "a measurement for a GPU machine (minutes here); tests/test_readme_numbers.py runs --measure with a stand-in "
        "command and a stubbed GPU"),
    "python experiments/paper_cost.py": Elsewhere(
        "test_experiments.py::test_the_readme_s_paper_cost_table_is_what_the_script_prints_from_the_committed_bench"),
    "tinyresnet-bench --nets=net1,net6 --precision=both": NotRun(
        "full-width nets in two precisions, for a GPU (bfloat16 is emulated on this CPU); tests/test_bench.py runs "
        "--smoke"),
    "tinyresnet-tune --search=... --oracle=hyperband --max-hours=2 --epochs=9":
        NotRun("'...' stands for a search file; " + SEARCH_HOURS),
    "tinyresnet-tune --search=... --workers=2": NotRun("'...' stands for a search file; " + SEARCH_HOURS),
    "tinyresnet-tune report runs/tune/tiny20_v3 --out tuning/results/tiny20_v3":
        NotRun("it reads the project of the committed search v3, which CI does not train; test_tuning_confirm.py "
               "runs `report --out` on a confirmed fixture project"),
    "tinyresnet-tune report runs/tune/tiny20_hyperband --out tuning/results/tiny20_hyperband":
        NotRun("it reads the project of the committed search, which CI does not train; test_tuning_confirm.py "
               "runs `report --out` on a confirmed fixture project"),
    "tinyresnet-tune report runs/tune/tiny20_depth_width --out tuning/results/tiny20_depth_width":
        NotRun("it reads the project of the committed search, which CI does not train; "
               "test_user_path.py runs `tinyresnet-tune report` on a 2-trial project"),
    "tinyresnet-tune --search=tuning/x.yaml --project-dir=/shared/tune/x --role=chief --oracle=0.0.0.0:8470":
        NotRun("a recipe for a cluster (tuning/x.yaml stands for your search file); tests/test_tuning_distributed.py runs a "
               "chief and workers on 127.0.0.1"),
    "tinyresnet-tune --search=tuning/x.yaml --project-dir=/shared/tune/x --role=worker "
    "--oracle=chief-host:8470 --tuner-id=worker$JOB_INDEX":
        NotRun("a recipe for a cluster's worker machines; tests/test_tuning_distributed.py runs workers on 127.0.0.1"),
}


def readme_commands():
    """`[(readme, command)]`: each line of the READMEs' fenced bash blocks, continuations joined,
    comments dropped."""
    found = []
    for readme in READMES:
        with open(os.path.join(REPO, readme)) as f:
            text = f.read()
        for block in re.findall(r"^```(?:bash|sh|shell)\n(.*?)^```", text, flags=re.S | re.M):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if words:
                    found.append((readme, shlex.join(words) if "$" not in line else _without_comment(line)))
    return found


def _without_comment(line):
    # shlex.join would quote `$JOB_INDEX`; keep such a line as written.
    return re.sub(r"\s+#.*$", "", re.sub(r"\s+", " ", line)).strip()


def _key(command):
    return shlex.join(shlex.split(command)) if "$" not in command else command


def test_every_readme_command_has_a_plan():
    commands = {command for _, command in readme_commands()}
    planned = {_key(c) for c in PLAN}
    assert not commands - planned, f"README commands without a plan in {__file__}: {sorted(commands - planned)}"
    assert not planned - commands, f"planned commands no README shows any more: {sorted(planned - commands)}"


def _program(words):
    """(program for --help, the words after it) of a command; None for one with no help to check."""
    if words[0] == "python" and words[1:3] == ["-m", "experiments.run"]:
        return ("python -m experiments.run", words[3:])
    if words[0] == "python" and words[1].endswith(".py"):
        return (f"python {words[1]}", words[2:])
    if words[0] == "tinyresnet-tune" and words[1:2] in (["report"], ["confirm"]):
        return (f"tinyresnet-tune {words[1]}", words[2:])
    if words[0].startswith("tinyresnet-"):
        return (words[0], words[1:])
    return None  # bash scripts and pytest: no flags of ours


_HELP = {}


def _help(program):
    if program not in _HELP:
        words = program.split()
        argv = [sys.executable, *words[1:]] if words[0] == "python" else [os.path.join(BIN, words[0]), *words[1:]]
        out = subprocess.run(argv + ["--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and "usage:" in out.stdout, f"{program} --help failed:\n{out.stderr[-2000:]}"
        _HELP[program] = out.stdout
    return _HELP[program]


def _config_keys():
    from tinyresnet import config as config_lib
    return set(config_lib.fields())


def _flag_known(program, flag, help_text):
    if re.search(rf"(^|[\s,\[]){re.escape(flag)}([\s=,\]]|$)", help_text, flags=re.M):
        return True
    # tinyresnet-train takes any config field as --key=value, tinyresnet-tune any base key.
    key = flag[2:].replace("-", "_")
    return program in ("tinyresnet-train", "tinyresnet-tune") and key in _config_keys()


@pytest.mark.parametrize("command", sorted({c for _, c in readme_commands()}))
def test_every_flag_of_a_readme_command_is_one_its_script_knows(command):
    words = shlex.split(command.replace("$", ""))
    found = _program(words)
    if found is None:
        return
    program, rest = found
    flags = [w.split("=", 1)[0] for w in rest if w.startswith("--")]
    help_text = _help(program)
    unknown = [f for f in flags if not _flag_known(program, f, help_text)]
    assert not unknown, f"{command}: {program} --help knows no {unknown}"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A scratch folder holding what the README commands name: cifar.zip, photos/, more/*.png."""
    root = tmp_path_factory.mktemp("readme")
    write_zip(root / "cifar.zip", class_folder_files(("cat", "dog"), per_class=12, size=(32, 32)), prefix="cifar/")
    files = tiny_imagenet_files(train_per_class=1, val=0, test=4)
    (root / "photos").mkdir()
    (root / "more").mkdir()
    for i in range(2):
        (root / "photos" / f"{i}.JPEG").write_bytes(files[f"test/images/test_{i}.JPEG"])
    import numpy as np
    import tensorflow as tf
    png = tf.io.encode_png(np.full((40, 30, 4), 200, np.uint8)).numpy()  # another size, with alpha
    (root / "more" / "x.png").write_bytes(png)
    return root


def _substituted(command):
    """The command with the paths it names made real: the shared data, the repository's files."""
    shared = SHARED or os.path.join(REPO, "..", "shared", "data")
    command = command.replace("../shared/data/", shared.rstrip("/") + "/")
    for path in ("experiments/example.yaml", "tuning/tiny20_depth_width.yaml"):
        command = command.replace(path, os.path.join(REPO, path))
    return command


RUNNABLE = [c for c, plan in PLAN.items() if isinstance(plan, Run)]
# The export and predict commands use what the training command before them left.
ORDER = sorted(RUNNABLE, key=lambda c: ("export" in c, "predict" in c))


@pytest.mark.slow
@pytest.mark.parametrize("command", ORDER)
def test_the_runnable_readme_commands_run(command, scratch):
    plan: Run = PLAN[command]
    if plan.needs_shared and not SHARED:
        pytest.skip("needs ../shared/data (TINYRESNET_SHARED_DATA)")
    if ("export" in command or "predict" in command) and not SHARED:
        pytest.skip("uses the run of the shared-data training command above")
    words = shlex.split(_substituted(command)) + list(plan.extra)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    out = subprocess.run(words, cwd=scratch, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{command}:\n{(out.stdout + out.stderr)[-4000:]}"
    assert "Traceback" not in out.stderr
    if "export" in command:
        assert (scratch / "exported_models" / "net1" / "1" / "saved_model.pb").exists()
    if "predict" in command:
        rows = (scratch / "predictions.csv").read_text().splitlines()
        assert len(rows) == 1 + 3, rows  # a header, photos/0.JPEG, photos/1.JPEG, more/x.png
    if "--summary" in command:
        assert "parameters:  2,369,960" in out.stdout
    if "--list-presets" in command:
        assert out.stdout.count("\n") == 8


def test_a_readme_command_without_a_plan_is_caught(monkeypatch, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("```bash\ntinyresnet-train --epochs=2   # new\n```\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", str(tmp_path))
    monkeypatch.setattr(sys.modules[__name__], "READMES", ("README.md",))
    assert readme_commands() == [("README.md", "tinyresnet-train --epochs=2")]
    with pytest.raises(AssertionError, match="without a plan"):
        test_every_readme_command_has_a_plan()


def test_an_unknown_flag_is_caught():
    with pytest.raises(AssertionError, match="knows no"):
        test_every_flag_of_a_readme_command_is_one_its_script_knows("tinyresnet-export runs/x --no-such-flag")

