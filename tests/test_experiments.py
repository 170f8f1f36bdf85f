"""The claims' runner: arms as run directories, skip and resume, results and verdicts."""

import csv
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

from conftest import Lines, unpadded
from experiments import claim_results
from experiments import run as run_lib
from experiments.claims import ARMS, CIFAR, CLAIMS, TINY, Scale
from tinyresnet.stats import compare
from tinyresnet import runs


@pytest.fixture
def scale(tmp_path, tiny_zip):
    from fixtures import class_folder_files, write_zip
    cifar = write_zip(tmp_path / "cifar.zip", class_folder_files(("a", "b", "c"), per_class=8, size=(32, 32)),
                      prefix="cifar10/")
    common = dict(width=0.125, epochs=1, batch_size=4, precision="float32", verbose=0)
    return Scale("test", {TINY: "fixture", CIFAR: "fixture"},
                 {TINY: dict(dataset="tiny_imagenet", data=str(tiny_zip), **common),
                  CIFAR: dict(dataset="cifar10", data=str(cifar), **common)})


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# The runner is one for every claim (tinyresnet.runner): one claim of each dataset here, Tiny ImageNet and
# CIFAR-10. Every arm's config at every scale is checked without training (test_every_arm_is_a_valid_config_at_every_
# scale), and report-only writes every claim's results from the committed runs (test_user_path.py, test 7).
@pytest.mark.slow
@pytest.mark.parametrize("claim", ["resnet_vs_convnet", "cifar_depth"])
def test_two_arms_run_then_a_deleted_arm_alone_is_trained_again(tmp_path, scale, claim, capsys):
    arms = CLAIMS[claim].arms[:2]
    kwargs = dict(seeds=(0,), runs_root=str(tmp_path / "runs"), results_root=str(tmp_path / "results"), arms=arms)
    run_lib.run_claims([claim], scale, **kwargs)
    kept, deleted = (claim_results.run_dir(kwargs["runs_root"], "test", arm, 0) for arm in arms)
    kept_results = os.path.getmtime(os.path.join(kept, runs.RESULTS))
    shutil.rmtree(deleted)
    capsys.readouterr()

    verdicts = run_lib.run_claims([claim], scale, **kwargs)

    out = capsys.readouterr().out
    # The shared runner says the finished ones in one line (it said "finished, skipped" per run).
    assert "2 runs, 1 finished already" in out and f"{arms[1]} seed 0: training" in out
    assert os.path.getmtime(os.path.join(kept, runs.RESULTS)) == kept_results
    assert runs.is_finished(deleted)
    folder = tmp_path / "results" / claim
    rows = _csv(folder / "results.csv")
    assert [(r["arm"], r["seed"]) for r in rows] == [(arms[0], "0"), (arms[1], "0")]
    for row in rows:  # the fields of results.json, per arm and seed
        assert 0 <= float(row["val_top1"]) <= 1 and row["spec"] and int(row["epochs"]) == 1
        assert row["net"] == ARMS[row["arm"]].net
    summary = (folder / "summary.md").read_text()
    planned = len(CLAIMS[claim].arms)
    assert f"**Verdict: pending.** 2 of {planned} runs finished" in summary
    assert (folder / "curves.png").stat().st_size > 0
    assert verdicts[claim].verdict == "pending"


def test_a_run_directory_of_another_setting_stops_the_runner_before_any_training(tmp_path, scale):
    from tinyresnet import config as config_lib
    kwargs = dict(seeds=(0,), runs_root=str(tmp_path / "runs"), results_root=str(tmp_path / "results"))
    # Net 1's run as the runner starts it (its config recorded), at 1 epoch: no need to train it to refuse it.
    runs.start(claim_results.run_dir(kwargs["runs_root"], "test", "net1", 0),
               config_lib.to_dict(run_lib.arm_config("net1", scale, 0)))
    other = Scale("test", scale.data_names, {**scale.datasets, TINY: {**scale.datasets[TINY], "epochs": 2}})
    with pytest.raises(runs.RunDirError, match="epochs: 1 -> 2") as refused:
        run_lib.run_claims(["resnet_vs_convnet", "table1"], other, **kwargs)
    assert not os.path.exists(claim_results.run_dir(kwargs["runs_root"], "test", "net6", 0))
    # What a user of the runner can do: it has no --overwrite or --run-dir.
    assert "remove that run directory" in str(refused.value) and "--runs-dir" in str(refused.value)
    assert "--overwrite" not in str(refused.value) and "--run-dir " not in str(refused.value)


def test_the_runner_names_its_own_remedies_for_a_run_of_another_setting_and_train_keeps_its_own(tmp_path):
    from tinyresnet import config as config_lib
    folder = str(tmp_path / "net1" / "seed_0")
    runs.start(folder, config_lib.to_dict(config_lib.Config(epochs=1, precision="float32")))
    config = config_lib.Config(epochs=2, precision="float32")
    with pytest.raises(runs.RunDirError) as runner:
        run_lib._check_run_dir(config, folder)
    assert str(runner.value) == (
        f"{folder} holds a run of a different config (epochs: 1 -> 2); remove that run directory to train this "
        "setting in its place (its run is then lost), or pass another --runs-dir")
    with pytest.raises(runs.RunDirError) as train:
        runs.check(folder, config_lib.to_dict(config), config_lib.run_defining)
    assert str(train.value) == (f"{folder} holds a run of a different config (epochs: 1 -> 2); pass --overwrite "
                                "to start it afresh, or choose another --run-dir")


def _fake_run(folder, net, val, train, history_val=(0.1, 0.2, 0.3, 0.4)):
    """A finished run directory with chosen accuracies, written without training."""
    os.makedirs(folder)
    runs.write_json(os.path.join(folder, runs.MARKER), {})
    runs.write_json(os.path.join(folder, runs.CONFIG), {"net": net})
    runs.write_history(os.path.join(folder, runs.HISTORY),
                       [{"epoch": e, "top1": v + 0.1, "val_top1": v, "loss": 1 - v, "val_loss": 1.1 - v,
                         "seconds": 30.0} for e, v in enumerate(history_val)])
    runs.write_json(os.path.join(folder, runs.RESULTS),
                    {"val_top1": val, "train_top1": train, "gap": train - val, "wall_seconds": 60.0,
                     "phase_seconds": {"fit": 50.0}, "image_shape": [64, 64, 3], "epochs": 4})


@pytest.mark.parametrize("net6_val, verdict", [(0.30, "supported"), (0.395, "inconclusive"),
                                               (0.45, "not supported")])
def test_the_verdict_follows_the_seeds_spread(tmp_path, net6_val, verdict):
    values = {"net1": (0.40, 0.41), "net1_plain": (0.30, 0.31), "net6": (net6_val, net6_val + 0.01)}
    for arm, vals in values.items():
        for seed, val in enumerate(vals):
            _fake_run(claim_results.run_dir(str(tmp_path), "cpu", arm, seed), ARMS[arm].net, val, val + 0.2)
    from experiments.claims import scale
    got = claim_results.write("resnet_vs_convnet", scale("cpu", "/data"), (0, 1), str(tmp_path), str(tmp_path / "out"))
    assert got.verdict == verdict
    summary = unpadded((tmp_path / "out" / "summary.md").read_text())
    assert f"**Verdict: {verdict}.**" in summary
    # 4 epochs of 30 s, though the last sitting's fit (wall_seconds) took 60 s: a resumed run counts every sitting
    assert "| 2.0 |" in summary
    assert "| net1 | net1 | default | 2 | 40.5 ± 0.5 | 60.5 ± 0.5 | 20.0 ± 0.0 |" in summary
    rows = _csv(tmp_path / "out" / "results.csv")
    assert len(rows) == 6 and rows[0]["phase_seconds.fit"] == "50.0" and rows[0]["image_shape"] == "64x64x3"


def test_compare_calls_a_difference_only_beyond_both_spreads():
    def arms(a, b):
        return {"a": [{"v": x} for x in a], "b": [{"v": x} for x in b]}
    assert compare(arms([0.5, 0.6], [0.3, 0.4]), "a", "b", "v").direction == "higher"
    assert compare(arms([0.3, 0.4], [0.5, 0.6]), "a", "b", "v").direction == "lower"
    assert compare(arms([0.35, 0.5], [0.3, 0.4]), "a", "b", "v").direction == "within spread"
    assert compare(arms([0.9], [0.1]), "a", "b", "v").direction == "pending"  # one seed has no spread
    one = compare(arms([0.567], [0.5, 0.6]), "a", "b", "v")
    assert (str(one.a), str(one.b)) == ("56.7 (1 seed)", "55.0 ± 5.0")  # not "± 0.0", a spread it has not got


def test_with_three_seeds_overlapping_ranges_are_within_spread():
    def arms(a, b):
        return {"a": [{"v": x} for x in a], "b": [{"v": x} for x in b]}
    # Means 0.463 and 0.343, spreads 0.05 and 0.06: "mean ± spread" would call this higher,
    # but a's lowest seed (0.40) is below b's highest (0.42): the ranges overlap.
    assert compare(arms([0.40, 0.49, 0.50], [0.30, 0.31, 0.42]), "a", "b", "v").direction == "within spread"
    assert compare(arms([0.43, 0.49, 0.50], [0.30, 0.31, 0.42]), "a", "b", "v").direction == "higher"
    assert compare(arms([0.30, 0.31, 0.42], [0.43, 0.49, 0.50]), "a", "b", "v").direction == "lower"
    assert compare(arms([0.5, 0.6, 0.7], [0.5, 0.3, 0.4]), "a", "b", "v").direction == "within spread"  # touching


def test_the_cifar_and_table1_verdicts():
    def rows(**means):
        return {arm: [{"val_top1": m - 0.005, "early_val_top1": m - 0.1}, {"val_top1": m + 0.005,
                                                                           "early_val_top1": m - 0.09}]
                for arm, m in means.items()}
    cifar = CLAIMS["cifar_depth"].verdict

    def convnets(seven, nine, **more):  # both ConvNets (with and without block dropout) at the same accuracy
        return rows(cifar7_plain=seven, cifar7_plain_no_dropout=seven, cifar9_plain=nine,
                    cifar9_plain_no_dropout=nine, **more)
    assert cifar(convnets(0.65, 0.7, cifar7=0.6, cifar9=0.7)).verdict == "inconclusive"
    both = convnets(0.65, 0.7, cifar7=0.6, cifar9=0.7)
    both["cifar9"] = [{"val_top1": 0.7, "early_val_top1": 0.65}, {"val_top1": 0.705, "early_val_top1": 0.66}]
    assert cifar(both).verdict == "supported"
    assert cifar(convnets(0.6, 0.7, cifar7=0.7, cifar9=0.7)).verdict == "not supported"
    # A 9-layer ResNet clearly above its ConvNet is not "about equal": that part is contradicted, not open.
    apart = cifar(convnets(0.65, 0.7, cifar7=0.6, cifar9=0.75))
    assert apart.verdict == "not supported" and "9 layers: about equal: contradicted (ResNet 5.0 points)" in apart.why
    # The two ConvNets disagree: the verdict is open, and says on what it depends.
    split = {**both, **rows(cifar7_plain_no_dropout=0.5)}
    assert cifar(split).verdict == "inconclusive" and "depends on the ConvNet's block dropout" in cifar(split).why
    assert "ConvNet without block dropout 50.0 ± 0.5" in cifar(split).ours
    table1 = CLAIMS["table1"].verdict
    paper_like = rows(net1=0.49, net2=0.46, net3=0.46, net4=0.36, net5=0.42, net6=0.36)
    assert table1(paper_like).verdict == "supported"
    # Every pair 3 or more printed points apart counts, Net 1 vs Nets 2 and 3 (49 vs 46) included: 13 of 15.
    assert "13 keep the paper's order, 0 reverse it" in table1(paper_like).why
    reversed_ = rows(net1=0.30, net2=0.36, net3=0.36, net4=0.50, net5=0.42, net6=0.50)
    assert table1(reversed_).verdict == "not supported"
    # Nothing decided (every pair within the spread) is not a refutation: inconclusive.
    level = {arm: [{"val_top1": 0.40}, {"val_top1": 0.50}] for arm in (f"net{i}" for i in range(1, 7))}
    assert table1(level).verdict == "inconclusive" and "13 are within the seeds' spread" in table1(level).why
    # One seed per arm: no spread, no verdict yet.
    one_seed = {arm: runs_[:1] for arm, runs_ in paper_like.items()}
    assert table1(one_seed).verdict == "pending"


def test_bad_command_lines_are_refused_with_the_choices(capsys):
    with pytest.raises(SystemExit):
        run_lib.parse_args(["resnet_vs_kitten"])
    assert "unknown claim(s) resnet_vs_kitten; choose from resnet_vs_convnet" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_lib.parse_args(["cifar_depth", "--arms", "net1"])
    assert "--arms: net1 not in the claims' arms" in capsys.readouterr().err
    args, claims, arms = run_lib.parse_args(["all"])
    assert claims == list(CLAIMS) and args.seeds == 2 and args.scale == "cpu"


def test_distribution_mirrored_reaches_every_run_s_config(capsys):
    from experiments.claims import scale
    args, claims, _ = run_lib.parse_args(["all", "--scale=paper", "--distribution=mirrored"])
    overrides = run_lib.run_overrides(args)
    assert overrides == {"verbose": 2, "distribution": "mirrored"}
    paper = scale("paper", "/data")
    arms = {arm for claim in claims for arm in CLAIMS[claim].arms}
    assert {run_lib.arm_config(arm, paper, 0, overrides).distribution for arm in arms} == {"mirrored"}
    assert run_lib.run_overrides(run_lib.parse_args(["all"])[0]) == {"verbose": 2}  # the config's default
    with pytest.raises(SystemExit):
        run_lib.parse_args(["all", "--distribution=multi_worker"])
    assert "argument --distribution: invalid choice: 'multi_worker'" in capsys.readouterr().err


def test_the_claims_table_replaces_only_the_text_between_its_markers(tmp_path):
    from experiments.claims import Verdict, scale
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{claim_results.TABLE_START}\nold table\n{claim_results.TABLE_END}\noutro\n")
    verdicts = {"resnet_vs_convnet": Verdict("supported", why="Net 1 is above both",
                                             ours="val top-1 Net 1 40.5 ± 0.5")}
    claim_results.write_claims_table(str(readme), scale("cpu", "/data"), (0, 1), verdicts, run_lib.command_for)
    text = unpadded(readme.read_text())
    assert text.startswith("intro\n") and text.endswith("\noutro\n") and "old table" not in text
    assert ("| val top-1 Net 1 40.5 ± 0.5 | 20-class Tiny ImageNet, width 0.125, 10 epochs; 2 seeds |" in text
            and "**supported**: Net 1 is above both | `python -m experiments.run resnet_vs_convnet` |" in text)
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="no claims table markers"):
        claim_results.write_claims_table(str(readme), scale("cpu", "/data"), (0, 1), verdicts, run_lib.command_for)


@pytest.mark.parametrize("name", ["cpu", "cpu_w025", "cpu_w05", "paper"])
def test_every_arm_is_a_valid_config_at_every_scale(name):
    from experiments.claims import scale
    chosen = scale(name, "/data")
    for arm, spec in ARMS.items():
        if spec.data not in chosen.datasets:
            assert not any(chosen.has(c) and arm in c.arms for c in CLAIMS.values())
            continue
        config = run_lib.arm_config(arm, chosen, seed=1)
        values = chosen.datasets[spec.data]
        assert (config.net, config.seed, config.width, config.epochs) == (spec.net, 1, values["width"],
                                                                           values["epochs"])
        assert f"width {config.width:g}, {config.epochs} epochs" in chosen.describe(spec.data)
    if name == "paper":  # the paper's setting: full width, the downloaded 200 classes
        assert all(v["width"] == 1.0 and v["data"] == "" for v in chosen.datasets.values())


def test_a_run_is_claimed_by_exactly_one_of_many_runners_entering_at_once(tmp_path):
    import threading
    from tinyresnet import locks
    folder = str(tmp_path / "runs" / "cpu" / "net1" / "seed_0")
    start, won, refused = threading.Barrier(8), [], []
    release, refusals = threading.Event(), threading.Semaphore(0)

    def runner():
        start.wait()
        try:
            with locks.claim(folder):
                won.append(1)
                release.wait(10)
        except locks.Claimed as e:
            refused.append(str(e))
            refusals.release()

    threads = [threading.Thread(target=runner) for _ in range(8)]
    for t in threads:
        t.start()
    for _ in range(7):  # the winner holds its claim until the seven others are refused
        refusals.acquire(timeout=30)
    release.set()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(refused) == 7
    assert f"pid {os.getpid()}" in refused[0]
    assert os.path.exists(locks.lock_path(folder))  # never removed: a runner may be waiting on it


def test_the_claim_of_a_killed_runner_is_taken_over(tmp_path):
    from tinyresnet import locks
    folder = str(tmp_path / "net1" / "seed_0")
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from tinyresnet import locks\n"
                               f"with locks.claim({folder!r}):\n    print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(locks.Claimed, match=f"pid {holder.pid}"):
        with locks.claim(folder):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with locks.claim(folder):
        assert open(locks.lock_path(folder)).read().endswith(f"pid {os.getpid()}\n")


@pytest.mark.slow
def test_two_sharded_runners_one_killed_mid_run_finish_every_run_once(tmp_path, capsys):
    from fixtures import tiny_imagenet_files, write_zip
    data = tmp_path / "data"
    data.mkdir()
    write_zip(data / "tiny-imagenet-200-sub20.zip", tiny_imagenet_files(train_per_class=22, val=6, test=0))
    folder = tmp_path / "runs"
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def args(shard, verbose=0):
        return ["resnet_vs_convnet", "--seeds=1", "--steps-per-epoch=1", f"--data-dir={data}", f"--runs-dir={folder}",
                f"--results-dir={tmp_path / 'results'}", f"--shard={shard}/2", f"--verbose={verbose}"]

    def runner(*how):
        return subprocess.Popen([sys.executable, "-m", "experiments.run", *args(*how)], cwd=repo, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"})

    # shard 0: net1 and net6; shard 1: net1_plain. Keras' epoch lines (verbose 2, which does not define a run)
    # say when the first one has backed up net1's first epoch.
    first, second = Lines(runner(0, 2)), runner(1)
    first.wait_for(r"^Epoch 2/10")
    first.process.send_signal(signal.SIGKILL)  # mid-run: net1 has backed up an epoch, not all 10
    first.wait()
    net1 = folder / "cpu" / "net1" / "seed_0"
    assert 0 < runs.resume_epoch(str(net1)) < 10 and not runs.is_finished(str(net1))
    out, _ = second.communicate(timeout=600)
    assert second.returncode == 0, out[-3000:]
    assert "net1_plain seed 0: training" in out and "runs are not finished" in out
    assert not (tmp_path / "results" / "resnet_vs_convnet" / "results.csv").exists()  # not all finished yet

    # The killed runner again, in this process (a start of TensorFlow less): it takes the killed runner's claim
    # over, resumes net1, trains net6, writes the results.
    capsys.readouterr()
    run_lib.main(args(0))
    out = capsys.readouterr().out
    assert "net1 seed 0: resuming after epoch" in out
    for arm in ("net1", "net1_plain", "net6"):
        assert [r["epoch"] for r in runs.read_history(str(folder / "cpu" / arm / "seed_0"))] == list(range(10))
    rows = _csv(tmp_path / "results" / "resnet_vs_convnet" / "results.csv")
    assert sorted(r["arm"] for r in rows) == ["net1", "net1_plain", "net6"]


@pytest.mark.slow
def test_workers_share_the_runs_of_one_machine_each_trained_once_and_the_verdict_said_once(tmp_path):
    # Issue 29: --workers=N on one machine, as confirm has it (the same runner and launcher).
    from fixtures import tiny_imagenet_files, write_zip
    data = tmp_path / "data"
    data.mkdir()
    write_zip(data / "tiny-imagenet-200-sub20.zip", tiny_imagenet_files(train_per_class=22, val=6, test=0))
    folder = tmp_path / "runs"
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-m", "experiments.run", "resnet_vs_convnet", "--seeds=1", "--steps-per-epoch=1",
         f"--data-dir={data}", f"--runs-dir={folder}", f"--results-dir={tmp_path / 'results'}", "--workers=2"],
        cwd=repo, capture_output=True, text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "2 workers, each training with 1 intra-op thread(s)" in out.stdout
    trained = re.findall(r"^\[pid (\d+)\] \[\d/\d\] (\w+) seed 0: training in ", out.stdout, re.M)
    assert sorted(arm for _, arm in trained) == ["net1", "net1_plain", "net6"], out.stdout  # each once
    assert len({pid for pid, _ in trained}) == 2, out.stdout  # by both workers
    assert re.search(r"^\[pid \d+\] \[\d/\d\] net1 seed 0 epoch 10/10: val top-1 ", out.stdout, re.M)  # named lines
    assert out.stdout.count("resnet_vs_convnet: ") == 1  # the verdict, once, from the launcher
    for arm in ("net1", "net1_plain", "net6"):
        assert [r["epoch"] for r in runs.read_history(str(folder / "cpu" / arm / "seed_0"))] == list(range(10))
    rows = _csv(tmp_path / "results" / "resnet_vs_convnet" / "results.csv")
    assert sorted(r["arm"] for r in rows) == ["net1", "net1_plain", "net6"]


@pytest.mark.slow
def test_a_diverged_run_is_named_at_every_end_and_the_runner_exits_3(tmp_path):
    # From the fresh-eyes hunt of issue 29: the shared runner leaves a diverged run out for good, so the claim
    # stayed "pending" with exit 0 and nothing at the end said why (confirm says it and exits 3).
    from tinyresnet import runner
    folder = tmp_path / "runs" / "cpu" / "net6" / "seed_0"
    folder.mkdir(parents=True)
    (folder / runner.DIVERGED).write_text("loss became nan at epoch 0 step 2.\n")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-m", "experiments.run", "resnet_vs_convnet", "--report-only", "--seeds=1",
                          f"--runs-dir={tmp_path / 'runs'}", f"--results-dir={tmp_path / 'results'}"],
                         cwd=repo, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 3, out.stdout[-2000:] + out.stderr[-2000:]
    assert f"error: 1 run diverged and stays out of the results: {folder} (each one's diverged.txt says where; " \
           "delete it to train the run again)" in out.stderr and "Traceback" not in out.stderr


def test_the_width_ladder_runs_the_cpu_scale_s_tiny_imagenet_claims_wider_into_its_own_results():
    from experiments.claims import scale
    cpu, wider = scale("cpu", "/data"), scale("cpu_w025", "/data")
    assert wider.datasets["tiny_imagenet"] == {**cpu.datasets["tiny_imagenet"], "width": 0.25}
    assert [c for c in CLAIMS if wider.has(CLAIMS[c])] == ["resnet_vs_convnet", "overfitting_gap",
                                                           "dropout_augmentation"]
    assert claim_results.claim_dir("/r", "table1", cpu) == os.path.join("/r", "table1", "")
    assert claim_results.claim_dir("/r", "resnet_vs_convnet", wider) == os.path.join("/r", "resnet_vs_convnet",
                                                                                     "cpu_w025")
    args, claims, _ = run_lib.parse_args(["all", "--scale=cpu_w05", "--shard=1/3"])
    assert claims == ["resnet_vs_convnet", "overfitting_gap", "dropout_augmentation"] and args.shard == (1, 3)
    for bad in (["table1", "--scale=cpu_w025"], ["all", "--shard=2/2"], ["all", "--shard=x"]):
        with pytest.raises(SystemExit):
            run_lib.parse_args(bad)


def test_the_ladder_tables_each_comparison_per_width_from_the_committed_results(tmp_path):
    from experiments import ladder
    from experiments.claims import scale

    def commit(scale_name, claim, values):  # {arm: (seed 0, seed 1) val_top1}
        folder = claim_results.claim_dir(str(tmp_path), claim, scale(scale_name, "/"))
        os.makedirs(folder, exist_ok=True)
        rows = [{"claim": claim, "arm": arm, "seed": seed, "val_top1": v, "gap": 0.05}
                for arm, pair in values.items() for seed, v in enumerate(pair)]
        runs.write_csv(os.path.join(folder, "results.csv"), rows, ["claim", "arm", "seed", "val_top1", "gap"])
    commit("cpu", "resnet_vs_convnet", {"net1": (0.47, 0.48), "net1_plain": (0.25, 0.26), "net6": (0.52, 0.53)})
    commit("cpu_w025", "resnet_vs_convnet", {"net1": (0.55, 0.56), "net1_plain": (0.30, 0.31), "net6": (0.54, 0.56)})
    commit("cpu_w025", "dropout_augmentation", {"net1_no_dropout": (0.60, 0.61)})
    found = ladder.write(str(tmp_path))
    entries = {(label, width): c.direction for label, width, c in found["resnet_vs_convnet"]}
    assert entries[("Net 1 - Net 6, val top-1", 0.125)] == "lower"
    assert entries[("Net 1 - Net 6, val top-1", 0.25)] == "within spread"  # the verdict moves as the nets widen
    assert entries[("Net 1 without block dropout - Net 6, val top-1", 0.25)] == "higher"  # another claim's arm
    assert entries[("Net 1 - plain twin, val top-1", 0.5)] == "pending"
    text = unpadded((tmp_path / "resnet_vs_convnet" / "ladder.md").read_text())
    assert "| Net 1 - Net 6, val top-1 | 0.25 | 55.5 ± 0.5 | 55.0 ± 1.0 | 0.5 points | within spread |" in text
    stamp = os.path.getmtime(tmp_path / "resnet_vs_convnet" / "ladder.png")
    ladder.write(str(tmp_path))  # nothing new: both files are left alone
    assert os.path.getmtime(tmp_path / "resnet_vs_convnet" / "ladder.png") == stamp
    # Issue 33: the data axis, width 0.25 on 20 and 100 classes. Issue 30 (11): a report of one claim
    # rewrites that claim's ladder only.
    commit("cpu_c100", "resnet_vs_convnet", {"net1": (0.40, 0.41), "net6": (0.45, 0.46)})
    other = os.path.getmtime(tmp_path / "overfitting_gap" / "ladder.md")
    ladder.write(str(tmp_path), ["resnet_vs_convnet"])
    assert os.path.getmtime(tmp_path / "overfitting_gap" / "ladder.md") == other
    by_data = {(label, classes): c.direction for label, classes, c in ladder.data_table(str(tmp_path))["resnet_vs_convnet"]}
    assert by_data[("Net 1 - Net 6, val top-1", 20)] == "within spread"
    assert by_data[("Net 1 - Net 6, val top-1", 100)] == "lower"
    text = unpadded((tmp_path / "resnet_vs_convnet" / "ladder.md").read_text())
    assert "| Net 1 - Net 6, val top-1 | 100 | 40.5 ± 0.5 | 45.5 ± 0.5 | -5.0 points | lower |" in text


def _signed_points(text):  # "+4.0", "-6.5"; not the "-0.5" of "width-0.5"
    return [float(m) for m in re.findall(r"(?<![\w.])[+-]\d+\.\d", text)]


def test_the_readme_s_ladder_paragraphs_quote_the_committed_ladder_tables():
    from experiments.claims import LADDER_CLAIMS
    with open(os.path.join(run_lib.HERE, "README.md")) as f:
        readme = f.read()
    section = readme[readme.index("## The width ladder"):]
    section = section[:section.index("\n## ", 1)]
    committed = set()
    for claim in LADDER_CLAIMS:
        with open(os.path.join(run_lib.HERE, "results", claim, "ladder.md")) as f:
            committed |= {float(v) for v in re.findall(r"\| (-?\d+\.\d) points \|", unpadded(f.read()))}
    quoted = _signed_points(section)
    assert len(quoted) >= 15, "the ladder paragraphs quote the comparisons with their sign"
    stale = [v for v in quoted if v not in committed]
    assert not stale, f"experiments/README.md's width ladder quotes {stale}, found in no committed ladder.md"
    assert _signed_points("width-0.5 gives +4.0 and (-6.5, x)") == [4.0, -6.5]


@pytest.mark.slow
def test_the_paper_scale_builds_every_arm_s_model_and_config():
    from experiments import paper_cost
    from experiments.claims import scale
    from tinyresnet.models import build_model
    from tinyresnet.spec import PRESETS
    paper = scale("paper", "/data")
    costs = {arm: pflops for arm, _, pflops in paper_cost.arm_costs()}
    assert set(costs) == set(ARMS)
    for arm in ARMS:
        config = run_lib.arm_config(arm, paper, seed=0)
        classes = paper_cost.CLASSES[config.dataset]
        model = build_model(config.net, PRESETS[config.net].input_shape, classes, variant=config.variant,
                            block_dropout=config.block_dropout, shortcut=config.shortcut, width=config.width)
        assert model.output_shape == (None, classes) and config.width == 1.0 and config.epochs == 30
        if arm in ("net1", "net6", "net1_plain"):
            assert model.count_params() == 6_652_808  # Net 6 is Net 1 without shortcuts: the same weights
    # Net 1: 1.789 forward GFLOPs x 3 x 100,000 images x 30 epochs.
    assert costs["net1"] == pytest.approx(3 * 1.789e9 * 100_000 * 30 / 1e15, rel=1e-3)


def test_the_readme_s_paper_cost_table_is_what_the_script_prints_from_the_committed_bench():
    from experiments import paper_cost
    readme = open(os.path.join(os.path.dirname(run_lib.HERE), "experiments", "README.md")).read()
    assert paper_cost.markdown() in readme


def test_the_data_rung_is_the_width_0_25_rung_on_100_classes_and_refuses_a_missing_archive(tmp_path):
    # Issue 33: --scale=cpu_c100, and one line naming the archive it expected, before any training.
    import subprocess
    import sys
    from experiments.claims import scale
    rung, c100 = scale("cpu_w025", "/data"), scale("cpu_c100", "/data")
    assert c100.datasets["tiny_imagenet"] == {**rung.datasets["tiny_imagenet"],
                                              "data": os.path.join("/data", "tiny-imagenet-200-sub100.zip")}
    assert run_lib.plan(["resnet_vs_convnet", "overfitting_gap", "dropout_augmentation"], (0, 1), c100.arms) == [
        (arm, seed) for arm in ("net1", "net1_plain", "net6", "net1_no_dropout") for seed in (0, 1)]
    assert claim_results.claim_dir("/r", "overfitting_gap", c100) == os.path.join("/r", "overfitting_gap", "cpu_c100")
    out = subprocess.run([sys.executable, "-m", "experiments.run", "all", "--scale=cpu_c100",
                          f"--data-dir={tmp_path}", f"--runs-dir={tmp_path / 'runs'}"],
                         cwd=os.path.dirname(run_lib.HERE), capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and out.stderr.strip().splitlines() == [
        f"error: {tmp_path}/tiny-imagenet-200-sub100.zip not found (the cpu_c100 scale's tiny_imagenet archive); "
        "pass --data-dir or set TINYRESNET_SHARED_DATA"], out.stderr
    assert not (tmp_path / "runs").exists()


def _gpu_bench(tmp_path, name="NVIDIA A100-SXM4-40GB", kind="a100", gflops=20_000.0):
    """A copy of the committed CPU bench_wide JSON as a GPU's would be: its GPU, and Net 1 at `gflops`."""
    import json
    from experiments import paper_cost
    with open(os.path.join(paper_cost.HERE, "results", "performance", "bench_wide-zen3.json")) as f:
        record = json.load(f)
    record["gpu"] = {"name": name, "compute_capability": "8.0", "count": 1, "kind": kind}
    next(n for n in record["result"]["nets"] if n["label"] == "net1 x1")["float32"]["gflops"] = gflops
    path = tmp_path / f"bench_wide-{kind}.json"
    path.write_text(json.dumps(record))
    return str(path)


def test_a_gpu_bench_adds_its_column_of_hours_beside_the_cpu_s(tmp_path, capsys):
    from experiments import paper_cost
    cpu = os.path.join(paper_cost.HERE, "results", "performance", "bench_wide-zen3.json")
    gpu = _gpu_bench(tmp_path)
    table = unpadded(paper_cost.markdown([gpu, cpu]))  # a GPU's file first: the CPU's column still comes first
    header, _, net1 = table.splitlines()[:3]
    assert header.endswith(
        "| CPU hours per run at the bench's speed | a100 GPU hours per run at the bench's fp32 speed |")
    # Net 1: 16.10 training PFLOPs / 20,000 GFLOP/s = 805 s = 0.2 hours.
    assert net1 == "| net1 | 1.789 | 16.10 | 31 | 0.2 |"
    assert "a100 GPU hours: training FLOPs / 20000.0 GFLOP/s, full-width Net 1's fp32 training speed on " \
           "NVIDIA A100-SXM4-40GB in `" in table
    assert paper_cost.main(["--bench", gpu]) is None
    assert unpadded(capsys.readouterr().out).splitlines()[0] == \
        "| arm | forward GFLOPs / image | training PFLOPs per run (30 epochs) | a100 GPU hours per run at the " \
        "bench's fp32 speed |"


def test_the_gpu_page_gives_hours_from_a_committed_gpu_bench_and_says_so_without_one():
    from experiments import paper_cost
    with open(os.path.join(paper_cost.HERE, "GPU.md")) as f:
        page = f.read()
    if any(speed["gpu"] for speed in paper_cost.bench_speeds()):
        assert paper_cost.markdown() in page, "experiments/GPU.md: paste python experiments/paper_cost.py's table"
    else:
        assert "No GPU bench is committed yet" in page and "GPU hours per run" not in page
