"""training.config and the command line that builds it."""

from __future__ import annotations

import pytest

from training.__main__ import build_parser, config_from_args
from training.config import FALLBACK_MIN_ACCURACY, FULL_MIN_ACCURACY, TrainConfig
from training.model import MLPConfig


def test_the_command_line_defaults_are_the_config_defaults():
    assert config_from_args(build_parser().parse_args([])) == TrainConfig()


def test_flags_land_in_the_config():
    cfg = config_from_args(build_parser().parse_args(
        ["--hidden", "64", "32", "--activation", "tanh", "--optimizer", "sgd", "--lr", "0.05",
         "--no-augment", "--no-register", "--no-download", "--seed", "7"]))
    assert cfg.model == MLPConfig(hidden_sizes=(64, 32), activation="tanh")
    assert (cfg.optimizer, cfg.lr, cfg.augmentation, cfg.register, cfg.download, cfg.seed) == (
        "sgd", 0.05, None, False, False, 7)


def test_dry_run_is_small_and_ungated_unless_a_gate_is_given():
    dry = TrainConfig(model=MLPConfig(hidden_sizes=(1024, 64))).dry()
    assert dry.epochs == 3 and dry.model.hidden_sizes == (128, 64) and dry.min_accuracy == 0.0
    assert TrainConfig(min_accuracy=0.5).dry().min_accuracy == 0.5


def test_the_accuracy_gate_depends_on_the_data_unless_given():
    assert TrainConfig().accuracy_gate(is_fallback=False) == FULL_MIN_ACCURACY
    assert TrainConfig().accuracy_gate(is_fallback=True) == FALLBACK_MIN_ACCURACY
    assert TrainConfig(min_accuracy=0.7).accuracy_gate(is_fallback=True) == 0.7


def test_recipe_records_what_made_the_model():
    r = TrainConfig().recipe()
    assert r["model"]["hidden_sizes"] == [1024] and r["optimizer"] == "adam"
    assert set(r) == {"model", "optimizer", "lr", "schedule", "batch_size", "epochs",
                      "patience", "augment", "label_smoothing", "calibrate", "seed", "dry_run"}
    assert r["augment"]["elastic"] == 34.0 and r["augment"]["elastic_sigma"] == 4.0
    assert r["augment"]["mouse"] == 0.1
    assert r["model"]["deskew"] is True and r["model"]["stroke_width"] == 2.0
    assert TrainConfig(augmentation=None).recipe()["augment"] == {}


@pytest.mark.parametrize("cfg", [TrainConfig(), TrainConfig(augmentation=None)])
def test_the_recipe_is_metadata_the_model_store_takes(cfg):
    from bentoml._internal.utils import validate_metadata

    validate_metadata({"config": cfg.recipe()})  # raises on a None (as --no-augment had)


def test_unknown_optimizer_or_schedule_is_refused():
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="step")
