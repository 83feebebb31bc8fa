"""The command line generated from the config dataclasses (training/flags.py)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import pytest

import training.config as config_module
from training import flags
from training.__main__ import build_parser, config_from_args
from training.flags import option
from training.model import MLPConfig


@dataclass(frozen=True)
class Inner:
    sizes: tuple[int, ...] = field(default=(4, 2), metadata=option("sizes", flag="--size"))
    kind: str = field(default="a", metadata=option("kind", choices=("a", "b")))


@dataclass(frozen=True)
class Levers:
    amount: float = field(default=0.5, metadata=option("how much"))


@dataclass(frozen=True)
class Outer:
    name: str | None = field(default=None, metadata=option("a name", group="naming"))
    count: int = field(default=3, metadata=option("how many"))
    on: bool = field(default=True, metadata=option("switch it off"))
    off: bool = field(default=False, metadata=option("switch it on"))
    both: bool = field(default=True, metadata=option("either way", both_ways=True))
    inner: Inner = field(default_factory=Inner, metadata=option(group="inner"))
    levers: Levers | None = field(default_factory=Levers, metadata=option(
        "no levers", flag="--no-levers", group="levers"))


def _parser(cls: type = Outer) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(formatter_class=flags.HelpFormatter)
    flags.add_flags(parser, cls)
    return parser


def _parse(argv: list[str]) -> Outer:
    return flags.build(Outer, vars(_parser().parse_args(argv)))


def test_no_flags_give_the_dataclass_defaults():
    assert _parse([]) == Outer()


def test_each_kind_of_field_has_its_flag():
    got = _parse(["--name", "x", "--count", "7", "--no-on", "--off", "--no-both",
                  "--size", "8", "16", "32", "--kind", "b", "--amount", "0.25"])
    assert got == Outer(name="x", count=7, on=False, off=True, both=False,
                        inner=Inner(sizes=(8, 16, 32), kind="b"), levers=Levers(amount=0.25))
    assert _parse(["--both"]).both is True


def test_an_optional_nested_config_switched_off_is_none():
    assert _parse(["--no-levers", "--amount", "0.9"]).levers is None


def test_choices_and_types_are_enforced():
    with pytest.raises(SystemExit):
        _parser().parse_args(["--kind", "c"])
    with pytest.raises(SystemExit):
        _parser().parse_args(["--count", "many"])


def test_help_shows_groups_metavars_and_defaults_but_not_bool_or_none_ones():
    text = _parser().format_help()
    assert "naming:" in text and "inner:" in text and "levers:" in text
    assert "--size SIZE [SIZE ...]" in text and "(default: [4, 2])" in text
    assert "how many (default: 3)" in text and "--kind {a,b}" in text
    assert "switch it off\n" in text and "a name\n" in text  # no "(default: True/None)"


def test_a_field_without_help_is_refused():
    @dataclass(frozen=True)
    class Silent:
        hidden: int = 1

    with pytest.raises(TypeError, match="'hidden' has no help"):
        _parser(Silent)


def test_a_model_option_is_one_field_of_mlpconfig(monkeypatch):
    """Adding a field to MLPConfig is all a new model option takes: the flag, its help
    and default, and the config built from it follow, with no edit elsewhere."""

    @dataclass(frozen=True)
    class WiderConfig(MLPConfig):
        width_scale: float = field(default=1.0, metadata=option("multiply each hidden size"))

    monkeypatch.setattr(config_module, "MLPConfig", WiderConfig)
    parser = build_parser()
    assert "multiply each hidden size (default: 1.0)" in " ".join(parser.format_help().split())
    cfg = config_from_args(parser.parse_args(["--width-scale", "2", "--dropout", "0.2"]))
    assert cfg.model == WiderConfig(width_scale=2.0, dropout=0.2)


def test_every_flag_lands_in_its_field():
    """Each flag of the real command line sets its own field and no other."""
    defaults = config_from_args(build_parser().parse_args([]))
    cfg = config_from_args(build_parser().parse_args(
        ["--val-fraction", "0.2", "--stroke-width", "0", "--no-deskew", "--weight-decay",
         "0.01", "--patience", "3", "--mouse", "0.5", "--elastic-sigma", "2",
         "--min-accuracy", "0.5", "--no-calibrate", "--dry-run", "--data-dir", "d"]))
    assert (cfg.val_fraction, cfg.weight_decay, cfg.patience, cfg.min_accuracy,
            cfg.calibrate, cfg.dry_run, cfg.data_dir) == (0.2, 0.01, 3, 0.5, False, True, "d")
    assert (cfg.model.stroke_width, cfg.model.deskew) == (0.0, False)
    assert cfg.model.hidden_sizes == defaults.model.hidden_sizes
    assert cfg.augmentation is not None and defaults.augmentation is not None
    assert (cfg.augmentation.mouse, cfg.augmentation.elastic_sigma) == (0.5, 2.0)
    assert cfg.augmentation.degrees == defaults.augmentation.degrees
