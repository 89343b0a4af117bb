import pytest

from cluster.config import default_config_text, load_config
from cluster.errors import ConfigError


def test_defaults_match_the_shipped_file():
    c = load_config()
    assert c.metric_names == ("patents", "publications", "vc")
    assert c.eps_km == 10.0 and c.top_n == 100
    assert c.metric("patents").min_share == 0.0005
    assert "eps_km = 10.0" in default_config_text()


def test_threshold_from_share_or_weight():
    c = load_config(overrides={"min_weight": {"vc": 42}})
    assert c.metric("vc").threshold(1e6) == 42
    assert c.metric("patents").threshold(1e6) == pytest.approx(500)


def test_unknown_key_suggests_closest(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[clustering]\neps_kms = 5\n")
    with pytest.raises(ConfigError, match="unknown key 'eps_kms'. Did you mean 'eps_km'"):
        load_config(p)


def test_every_problem_reported_at_once(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[clustering]\neps_km = -1\n[ranking]\ntop_n = 0\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert "eps_km must be in [0.01, 5000]" in str(exc.value)
    assert "top_n must be a positive integer" in str(exc.value)


def test_metric_needs_exactly_one_threshold(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[metrics.patents]\nmin_share = 0.01\nmin_weight = 5\n")
    with pytest.raises(ConfigError, match="exactly one of min_weight or min_share"):
        load_config(p)


def test_user_metrics_replace_default_set(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[metrics.patents]\nmin_weight = 5\n")
    assert load_config(p).metric_names == ("patents",)


def test_unknown_metric_in_override():
    with pytest.raises(ConfigError, match="unknown metric 'patent'"):
        load_config(overrides={"min_weight": {"patent": 3}})


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[clustering\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
