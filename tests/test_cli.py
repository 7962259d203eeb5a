"""The `sbir` command, run in-process on tiny synthetic data."""

from __future__ import annotations

import json

import pytest

from sbirlib import cli
from sbirlib.recipes import RECIPES

TINY = '{"n_classes": 3, "n_instances": 6, "in_memory": true}'


def test_list_models_and_datasets(capsys):
    assert cli.main(["list-models", "resnet*"]) == 0
    out = capsys.readouterr().out.split()
    assert "resnet18" in out and "sketch_a_net" not in out
    assert cli.main(["datasets"]) == 0
    assert "synthetic-fg" in capsys.readouterr().out


def test_parser_knows_every_recipe():
    parser = cli.build_parser()
    for name in RECIPES:
        args = parser.parse_args(["train", name, "--profile", "smoke", "--output-dir", "x"])
        assert args.method == name


def test_train_then_evaluate(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "triplet-sn", "--dataset", "synthetic-fg", "--profile", "smoke", "--output-dir", str(out),
            "--epochs", "1", "--device", "cpu", "--quiet", "--set", f"synthetic={TINY}",
            "--set", "pretrained=false", "--set", "steps_per_epoch=2", "--set", "batch_size=4",
            "--set", "views=1"]
    assert cli.main(argv) == 0
    rec = json.loads((out / "metrics.json").read_text())
    assert (out / "checkpoint.pt").is_file()
    assert set(rec["test"]) >= {"acc@1", "acc@10"} and rec["provenance"]["config"]["epochs"] == 1
    capsys.readouterr()
    ev = ["evaluate", "triplet-sn", "--profile", "smoke", "--checkpoint", str(out / "checkpoint.pt"),
          "--device", "cpu", "--quiet", "--set", f"synthetic={TINY}", "--set", "pretrained=false",
          "--set", "views=1", "--set", "batch_size=4", "--set", "steps_per_epoch=2", "--set", "epochs=1"]
    assert cli.main(ev) == 0
    printed = capsys.readouterr().out
    shown = json.loads(printed[printed.index("{"):])
    assert shown["test/acc@1"] == pytest.approx(rec["metrics"]["test/acc@1"])


BAD_INPUT = {
    "unknown profile": (["train", "triplet-ce", "--profile", "cpu-rael", "--output-dir", "{tmp}"],
                        "has no profile 'cpu-rael'"),
    "unknown setting": (["train", "triplet-sn", "--profile", "smoke", "--output-dir", "{tmp}",
                         "--set", "lr_typo=1"], "has no setting 'lr_typo'"),
    "float as text": (["train", "dssa", "--output-dir", "{tmp}", "--set", "lr=abc"], "lr takes a float"),
    "int as text": (["train", "dssa", "--output-dir", "{tmp}", "--set", "epochs=abc"], "epochs takes an int"),
    "int as bool": (["train", "dssa", "--output-dir", "{tmp}", "--set", "epochs=true"], "epochs takes an int"),
    "set without =": (["train", "dssa", "--output-dir", "{tmp}", "--set", "lr"], "--set expects KEY=VALUE"),
    "unknown dataset": (["train", "dlinet", "--dataset", "no-such-set", "--output-dir", "{tmp}"],
                        "unknown dataset 'no-such-set'"),
    "unknown method": (["train", "no-such-method", "--output-dir", "{tmp}"], "invalid choice"),
    "missing data": (["train", "triplet-sn", "--profile", "cpu-real", "--dataset", "qmul-v1",
                      "--category", "shoes", "--data-root", "{tmp}/empty", "--output-dir", "{tmp}/run"],
                     "{tmp}/empty"),
    "missing checkpoint": (["evaluate", "triplet-sn", "--profile", "smoke", "--checkpoint", "{tmp}/none.pt"],
                           "does not exist"),
    "unreadable checkpoint": (["evaluate", "triplet-sn", "--profile", "smoke", "--device", "cpu",
                               "--set", "pretrained=false", "--checkpoint", "{tmp}/garbage.pt"],
                              "cannot load checkpoint"),
}


@pytest.mark.parametrize("case", BAD_INPUT, ids=list(BAD_INPUT))
def test_bad_input_is_one_line_and_exit_status_2(case, tmp_path, capsys):
    argv, expected = BAD_INPUT[case]
    (tmp_path / "empty").mkdir()
    (tmp_path / "garbage.pt").write_bytes(b"this is not a checkpoint")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        status = cli.main(argv)
    except SystemExit as exit_:  # argparse's own errors exit from inside parse_args
        status = exit_.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2, err
    assert len(lines) == 1 and lines[0].startswith("sbir: error: "), err
    assert "Traceback" not in err
    assert expected.replace("{tmp}", str(tmp_path)) in lines[0]


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(cli.UsageError, match="lr takes a float"):
        cli.main(["--debug", "train", "dssa", "--output-dir", str(tmp_path), "--set", "lr=abc"])
    with pytest.raises(cli.UsageError):
        cli.main(["train", "dssa", "--output-dir", str(tmp_path), "--set", "lr=abc", "--debug"])


def test_the_console_script_exits_2_without_a_traceback(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "sbirlib.cli", "train", "dssa", "--output-dir",
                           str(tmp_path), "--set", "epochs=abc"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "sbir: error:" in proc.stderr


def test_train_the_category_baseline_on_a_users_class_folders(tmp_path, capsys):
    """`--dataset class-folders --data-root DIR`: any photo/<class> + sketch/<class> folder trains."""
    from test_class_folders import make_layout

    root = make_layout(tmp_path / "mine", ["cat", "dog", "cup"], photos=3, sketches_per_photo=3)
    out = tmp_path / "run"
    argv = ["train", "triplet-ce", "--profile", "cpu-real", "--dataset", "class-folders", "--data-root", str(root),
            "--output-dir", str(out), "--device", "cpu", "--quiet", "--epochs", "1",
            "--set", "pretrained=false", "--set", "steps_per_epoch=2", "--set", "batch_size=4",
            "--set", "load_size=32", "--set", "input_size=32", "--set", "metrics=[\"map@all\", \"p@3\"]"]
    assert cli.main(argv) == 0
    rec = json.loads((out / "metrics.json").read_text())
    assert set(rec["test"]) == {"map@all", "p@3"}
    assert rec["provenance"]["dataset"] == "class-folders"
    assert rec["provenance"]["config"]["freeze_blocks"] == 11
