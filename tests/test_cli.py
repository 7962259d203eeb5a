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


def test_unknown_setting_and_profile_fail_loudly(tmp_path):
    with pytest.raises(KeyError, match="unknown setting"):
        cli.main(["train", "triplet-sn", "--profile", "smoke", "--output-dir", str(tmp_path), "--set", "lr_typo=1"])
    with pytest.raises(ValueError, match="unknown profile"):
        cli.main(["train", "triplet-ce", "--profile", "cpu-real", "--output-dir", str(tmp_path)])


def test_missing_checkpoint_is_reported(tmp_path):
    with pytest.raises(SystemExit, match="does not exist"):
        cli.main(["evaluate", "triplet-sn", "--profile", "smoke", "--checkpoint", str(tmp_path / "none.pt")])
