import os
import subprocess
import sys

from fixtures import class_folder_files, write_zip


def _python(code, env=None):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **(env or {})})
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_help_presets_and_the_notation_do_not_load_tensorflow():
    code = ("import sys, contextlib, io\n"
            "from tinyresnet import cli\n"
            "import tinyresnet, tinyresnet.spec, tinyresnet.config\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    cli.train_main(['--list-presets'])\n"
            "    try:\n"
            "        cli.train_main(['--help'])\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print(sorted(m for m in ('tensorflow', 'keras', 'tensorflow_datasets') if m in sys.modules))\n")
    assert _python(code).strip() == "[]"


def test_the_library_leaves_log_settings_alone_and_the_commands_keep_the_user_s():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    code = "import os, tinyresnet; print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.stdout.strip() == "None"
    code = "import os, tinyresnet.cli; print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.stdout.strip() == "2"
    assert _python(code, {"TF_CPP_MIN_LOG_LEVEL": "0"}).strip() == "0"


def test_summary_uses_the_size_of_a_folder_s_images(tmp_path, capsys):
    from tinyresnet.cli import train_main
    data = write_zip(tmp_path / "d.zip", class_folder_files(("a", "b"), per_class=2, size=(32, 32)))
    assert train_main(["--preset=cifar7", "--dataset=folder", f"--data={data}", "--summary"]) == 0
    out = capsys.readouterr().out
    assert "per 32x32 image" in out and "parameters:  308,842" in out


def test_a_bad_run_dir_fails_before_tensorflow_loads(tmp_path, capsys):
    from tinyresnet.cli import train_main
    (tmp_path / "notes.txt").write_text("mine")
    assert train_main([f"--run-dir={tmp_path}", "--overwrite", "--preset=net1"]) == 2
    assert "is not a tinyresnet run directory" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").exists()


def test_a_config_file_with_a_syntax_error_names_its_line_without_a_traceback(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("epochs: 3\nwidth: 0.5\n  net: net3\n")
    code = "import sys; from tinyresnet.cli import train_main; sys.exit(train_main())"
    out = subprocess.run([sys.executable, "-c", code, "--config", str(path)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "bad.yaml, line 3" in out.stderr
    assert "Traceback" not in out.stderr


def test_train_takes_config_fields_in_the_space_separated_form(monkeypatch):
    from tinyresnet import cli
    seen = []
    monkeypatch.setattr(cli, "_print_summary", seen.append)
    assert cli.train_main(["--preset=net1", "--epochs", "3", "--summary", "--width", "0.5", "--skip-corrupt"]) == 0
    assert (seen[0].net, seen[0].epochs, seen[0].width, seen[0].skip_corrupt) == ("net1", 3, 0.5, True)


def test_report_refuses_an_out_that_is_a_file_and_names_that_do_not_match(tmp_path, capsys):
    from tinyresnet.cli import report_main
    (tmp_path / "afile").write_text("x")
    assert report_main([str(tmp_path), "--out", str(tmp_path / "afile")]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    assert report_main([str(tmp_path), str(tmp_path), "--names", "one"]) == 2
    assert "--names gives 1 label for 2 runs" in capsys.readouterr().err


def test_options_take_the_underscore_spelling_and_are_never_abbreviated(tmp_path, capsys):
    from tinyresnet.cli import train_main
    (tmp_path / "notes.txt").write_text("mine")
    assert train_main([f"--run_dir={tmp_path}", "--overwrite", "--preset=net1"]) == 2
    assert f"{tmp_path} is not a tinyresnet run directory" in capsys.readouterr().err
    assert train_main(["--exp"]) == 2  # not taken for --export
    assert "'--exp'" in capsys.readouterr().err
