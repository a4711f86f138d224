"""config.py: one recipe, validated in one place; the command line and the notebook's variables come from it."""

import argparse
import dataclasses

import pytest

import train
from config import AUGMENTATION, ConfigError, TrainConfig, add_config_arguments, config_from_args, config_from_env, flag


@pytest.mark.parametrize("name, value", [
    ("model", "9k"), ("epochs", 0), ("epochs", 2.5), ("batch_size", -1), ("lr", float("nan")), ("lr", 0),
    ("momentum", 1.0), ("weight_decay", -1e-4), ("warmup", 0), ("ema_decay", 1.0), ("label_smoothing", 1.0),
    ("stroke_prob", 1.5), ("seed", -1), ("pipeline", "pil"), ("test_batch_size", 0), ("subset", 0),
])
def test_every_field_is_checked_and_the_message_names_it(name, value):
    with pytest.raises(ConfigError) as info:
        TrainConfig(**{name: value})
    assert info.value.field == name and str(info.value).startswith(f"{name} must be ")
    assert repr(value) in str(info.value)


def test_every_field_has_a_rule_and_a_help_text():
    from config import RULES

    for f in dataclasses.fields(TrainConfig):
        assert f.name in RULES and len(f.metadata["help"]) > 10, f.name


def test_redrawn_strokes_clash_with_the_torchvision_pipeline():
    with pytest.raises(ConfigError, match="stroke_prob must be 0 with pipeline 'torchvision'"):
        TrainConfig(pipeline="torchvision")
    off = dict.fromkeys(AUGMENTATION, 0)
    with pytest.raises(ConfigError, match="noise must be 0 with pipeline 'torchvision'"):
        TrainConfig(pipeline="torchvision", **{**off, "noise": 0.1})
    assert TrainConfig(pipeline="torchvision", **off).stroke_prob == 0


def parse(argv):
    p = argparse.ArgumentParser()
    add_config_arguments(p)
    return config_from_args(p, p.parse_args(argv))


def test_command_line_is_generated_from_the_fields(capsys):
    assert parse([]) == TrainConfig()
    cfg = parse(["--model", "8k", "--batch-size", "64", "--lr", "0.1", "--subset", "500", "--stroke-prob", "0"])
    assert (cfg.model, cfg.batch_size, cfg.lr, cfg.subset, cfg.stroke_prob) == ("8k", 64, 0.1, 500, 0.0)
    p = argparse.ArgumentParser()
    add_config_arguments(p)
    text = p.format_help()
    for f in dataclasses.fields(TrainConfig):
        assert flag(f.name) in text, f.name
    with pytest.raises(SystemExit):
        parse(["--epochs", "0"])
    assert "--epochs must be a positive integer, got 0" in capsys.readouterr().err
    for lr in ("nan", "inf"):
        with pytest.raises(SystemExit):
            parse(["--lr", lr])
        assert "--lr must be a positive finite number" in capsys.readouterr().err


def test_train_py_reads_the_same_flags(capsys):
    cfg, args = train.parse_args(["--seed", "3", "--ema-decay", "0", "--out", "x"])
    assert cfg == TrainConfig(seed=3, ema_decay=0) and str(args.out) == "x"


def test_notebook_variables_are_the_fields_upper_cased():
    cfg = config_from_env({"S6_EPOCHS": "3", "S6_MODEL": "4k", "S6_SUBSET": "", "S6_LR": "0.1", "S6_DATA_DIR": "/d"})
    assert (cfg.epochs, cfg.model, cfg.subset, cfg.lr, cfg.data_dir) == (3, "4k", None, 0.1, "/d")
    assert config_from_env({}, epochs=2) == TrainConfig(epochs=2)
    with pytest.raises(ValueError, match="S6_EPOCHS must be a positive integer, got 'abc': fix or unset"):
        config_from_env({"S6_EPOCHS": "abc"})
    with pytest.raises(ValueError, match="S6_MODEL must be one of 15k, 8k, 4k, 60k, got '9k': fix or unset"):
        config_from_env({"S6_MODEL": "9k"})
    with pytest.raises(ValueError, match="S6_EPOCHS must be a positive integer, got 0"):
        config_from_env({"S6_EPOCHS": "0"})
