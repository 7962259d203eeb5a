import pytest

from sbirlib.profiles import Config, resolve_profile

PROFILES = {
    "smoke": {"dataset": "synthetic-fg", "category": None, "seed": 0, "epochs": 2, "lr": 1e-3},
    "full": {"dataset": "qmul-v1", "category": "shoes", "seed": 0, "epochs": 100, "lr": 1e-4},
}


def test_resolve_picks_profile_and_applies_overrides():
    cfg = resolve_profile(PROFILES, "smoke", epochs=5, seed=3)
    assert isinstance(cfg, Config)
    assert (cfg.profile, cfg.epochs, cfg.seed, cfg.lr) == ("smoke", 5, 3, 1e-3)


def test_none_override_keeps_profile_value():
    assert resolve_profile(PROFILES, "full", epochs=None).epochs == 100


def test_resolve_does_not_mutate_the_table():
    resolve_profile(PROFILES, "smoke", epochs=7)
    assert PROFILES["smoke"]["epochs"] == 2


def test_unknown_profile_is_rejected_with_hint():
    with pytest.raises(ValueError, match="cpu-real"):
        resolve_profile(PROFILES, "cpu-real")


def test_unknown_key_is_rejected():
    with pytest.raises(KeyError, match="epoch"):
        resolve_profile(PROFILES, "smoke", epoch=3)


def test_config_attribute_errors_and_repr():
    cfg = resolve_profile(PROFILES, "smoke")
    with pytest.raises(AttributeError, match="known keys"):
        cfg.nope
    with pytest.raises(AttributeError):
        cfg.new_key = 1
    cfg.lr = 0.5
    assert cfg["lr"] == 0.5
    assert repr(cfg).startswith("Config(") and "synthetic-fg" in repr(cfg)
    assert cfg.to_dict()["profile"] == "smoke"


def test_variant_copies_applies_none_and_refuses_unknown_keys():
    from sbirlib.profiles import resolve_profile, variant

    cfg = resolve_profile(PROFILES, "full")
    new = variant(cfg, lr=1e-3, seed=None)
    assert new.lr == 1e-3 and new.seed is None and new.profile == "full"
    assert cfg.lr == 1e-4 and cfg.seed == 0  # the original is untouched
    with pytest.raises(KeyError, match="unknown settings \\['lrr'\\]"):
        variant(cfg, lrr=1.0)
