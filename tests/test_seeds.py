"""rlbook.seeds and rlbook.claims: one build seed, and learning claims against a calibration."""

import json

import jax
import numpy as np
import pytest

from rlbook import claims, seeds


@pytest.fixture
def seed_env(monkeypatch):
    def set_env(seed=None, sets=None):
        for name, value in ((seeds.ENV, seed), (seeds.SETS_ENV, sets)):
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, str(value))

    set_env()
    return set_env


def test_key_folds_the_stream_into_the_build_seed(seed_env):
    for build in (0, 7, 123456):
        seed_env(seed=build)
        assert seeds.build_seed() == build
        for n in (0, 1, 41):
            expected = jax.random.fold_in(jax.random.PRNGKey(build), n)
            np.testing.assert_array_equal(seeds.key(n), expected)
        np.testing.assert_array_equal(seeds.keys(3, 4), jax.random.split(seeds.key(3), 4))


def test_streams_differ_between_streams_and_build_seeds(seed_env):
    draws = {}
    for build in (0, 1):
        seed_env(seed=build)
        for n in (0, 1):
            draws[build, n, "jax"] = float(jax.random.normal(seeds.key(n)))
            draws[build, n, "np"] = float(seeds.rng(n).normal())
    assert len(set(draws.values())) == len(draws)
    seed_env(seed=5)
    assert seeds.rng(2).normal() == seeds.rng(2).normal()  # a stream is reproducible
    np.testing.assert_array_equal(
        seeds.rng(2).normal(size=3), np.random.default_rng([2, 5]).normal(size=3)
    )


def test_default_build_seed_is_zero(seed_env):
    assert seeds.build_seed() == 0 and seeds.seed_sets() == 1
    np.testing.assert_array_equal(seeds.key(0), jax.random.fold_in(jax.random.PRNGKey(0), 0))


def test_train_keys_start_with_the_builds_set(seed_env):
    seed_env(seed=3)
    one = seeds.train_keys(2, 5)
    assert one.shape == (5, 2)
    seed_env(seed=3, sets=20)
    many = seeds.train_keys(2, 5)
    assert many.shape == (100, 2)
    np.testing.assert_array_equal(many[:5], one)
    assert len({tuple(k) for k in np.asarray(many)}) == 100


@pytest.mark.parametrize(
    "name, value",
    [
        (seeds.ENV, "x"),
        (seeds.ENV, "-1"),
        (seeds.ENV, str(2**31)),
        (seeds.SETS_ENV, "0"),
        (seeds.SETS_ENV, "1.5"),
    ],
)
def test_bad_environment_is_refused_by_name(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        seeds.key(0) if name == seeds.ENV else seeds.train_keys(0, 2)


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True, 2**31])
def test_bad_stream_index_is_refused(seed_env, bad):
    with pytest.raises(ValueError, match="n must"):
        seeds.key(bad)
    with pytest.raises(ValueError, match="n must"):
        seeds.rng(bad)


def test_bad_count_is_refused(seed_env):
    for f in (seeds.keys, seeds.train_keys):
        with pytest.raises(ValueError, match="count"):
            f(0, 0)


# ------------------------------------------------------------------------------ claims


@pytest.fixture
def calibration(tmp_path, monkeypatch, seed_env):
    path = tmp_path / "calibration.json"
    monkeypatch.setattr(claims, "CALIBRATION", path)

    def write(**records):
        path.write_text(json.dumps(records))

    return write


def test_margin_is_the_distance_in_standard_deviations():
    v = np.array([10.0, 12.0, 14.0, 16.0])
    m, mean, sd = claims.margin(v, 4.0, above=True)
    assert mean == 13.0 and sd == pytest.approx(np.sqrt(20 / 3))
    assert m == pytest.approx(9.0 / np.sqrt(20 / 3))
    assert claims.margin(v, 4.0, above=False)[0] == pytest.approx(-m)


def test_per_set_reshapes_the_seed_axis(seed_env):
    assert claims.per_set(np.arange(5.0)).shape == (1, 5)
    seed_env(sets=20)
    x = np.arange(100.0 * 3).reshape(100, 3)
    got = claims.per_set(x)
    assert got.shape == (20, 5, 3)
    np.testing.assert_array_equal(got[0], x[:5])
    with pytest.raises(ValueError, match="multiple"):
        claims.per_set(np.arange(7.0))


def test_check_passes_a_calibrated_claim_that_holds(calibration):
    calibration(
        **{
            "ch/c": dict(
                values=list(np.linspace(9, 11, 20)),
                threshold=5.0,
                above=True,
                text="",
                chapter="book/ch.md",
            )
        }
    )
    got = claims.check("ch/c", [10.0], 5.0, text="x above 5")
    assert got.value == 10.0 and got.margin > 3 and got.sets == 20


def test_check_fails_a_claim_too_close_to_its_calibrated_mean(calibration):
    calibration(
        **{
            "ch/c": dict(
                values=list(np.linspace(9, 11, 20)),
                threshold=9.5,
                above=True,
                text="",
                chapter="book/ch.md",
            )
        }
    )
    with pytest.raises(AssertionError, match="sd from the calibrated mean"):
        claims.check("ch/c", [10.0], 9.5)  # holds on this set, but too close to the mean


def test_check_fails_a_claim_that_does_not_hold(calibration):
    calibration(
        **{
            "ch/c": dict(
                values=list(np.linspace(9, 11, 20)),
                threshold=5.0,
                above=True,
                text="",
                chapter="book/ch.md",
            )
        }
    )
    with pytest.raises(AssertionError, match="ch/c failed"):
        claims.check("ch/c", [4.0], 5.0)
    calibration(
        **{
            "ch/c": dict(
                values=list(np.linspace(0, 1, 20)),
                threshold=5.0,
                above=False,
                text="",
                chapter="book/ch.md",
            )
        }
    )
    with pytest.raises(AssertionError, match="ch/c failed"):
        claims.check("ch/c", [6.0], 5.0, above=False)


def test_check_fails_without_calibration_or_with_a_small_margin(calibration):
    calibration(
        **{
            "ch/c": dict(
                values=list(np.linspace(9, 11, 20)),
                threshold=5.0,
                above=True,
                text="",
                chapter="book/ch.md",
            )
        }
    )
    with pytest.raises(AssertionError, match="no calibration record"):
        claims.check("ch/other", [10.0], 5.0)
    with pytest.raises(AssertionError, match="differs from the calibrated record"):
        claims.check("ch/c", [10.0], 6.0)  # a threshold other than the calibrated one
    with pytest.raises(AssertionError, match="direction"):
        claims.check("ch/c", [1.0], 5.0, above=False)


def test_check_records_when_calibrating(tmp_path, monkeypatch, seed_env):
    seed_env(seed=1000, sets=20)
    monkeypatch.setenv(claims.OUT_ENV, str(tmp_path))
    stat = np.linspace(1.0, 2.0, 20)
    got = claims.check("ch/c", stat, 0.0, text="positive")  # no record needed: it records
    rec = json.loads((tmp_path / "ch__c.json").read_text())
    assert rec["values"] == pytest.approx(list(stat)) and rec["threshold"] == 0.0
    assert rec["above"] is True and rec["seed"] == 1000 and rec["text"] == "positive"
    assert got.margin == pytest.approx(claims.margin(stat, 0.0, True)[0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="nochapter", statistic=[1.0], threshold=0.0), "name"),
        (dict(name="ch/c", statistic=[1.0, 2.0], threshold=0.0), "statistic"),
        (dict(name="ch/c", statistic=[1.0], threshold=float("nan")), "threshold"),
    ],
)
def test_check_refuses_bad_arguments_by_name(calibration, kwargs, match):
    with pytest.raises(ValueError, match=match):
        claims.check(**kwargs)


def test_check_fails_when_a_calibrated_set_fails(calibration):
    values = [10.0] * 19 + [4.0]  # mean 9.7, sd 1.34: margin 3.5, but one set fails
    calibration(
        **{"ch/c": dict(values=values, threshold=5.0, above=True, text="", chapter="book/ch.md")}
    )
    assert claims.margin(values, 5.0, True)[0] > 3
    with pytest.raises(AssertionError, match="calibrated seed set fails"):
        claims.check("ch/c", [10.0], 5.0)
    assert claims.worst(values, True) == 4.0 and claims.worst(values, False) == 10.0


def test_z_bound_is_the_bonferroni_normal_quantile_and_at_least_four():
    from scipy import stats

    assert claims.z_bound() == 4.0  # isf(5e-5) = 3.89 < 4
    for count in (2, 9, 100):
        z = claims.z_bound(count)
        assert z == pytest.approx(stats.norm.isf(1e-4 / (2 * count)))
        # all `count` two-sided tails together carry probability 1e-4 (Bonferroni)
        assert 2 * count * stats.norm.sf(z) == pytest.approx(1e-4)
    assert claims.z_bound(1, p=1e-9) == pytest.approx(stats.norm.isf(5e-10))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"count": 0}, "count"),
        ({"count": 1.5}, "count"),
        ({"count": True}, "count"),
        ({"p": 0.0}, "p"),
        ({"p": 1.0}, "p"),
        ({"p": float("nan")}, "p"),
    ],
)
def test_z_bound_refuses_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        claims.z_bound(**kwargs)
