"""Learning claims ("A learns", "A beats B"), checked in the build and calibrated apart.

A learning claim is a statistic of a training run over a set of seeds (the mean final
return of five seeds, a Welch t of one agent against another) held against a threshold.
Whether it holds is itself random: a claim tuned on one seed set checks that set, not
the claim. So each claim is *calibrated*: ``make calibrate`` executes the chapters that
state claims with ``RLBOOK_SEED_SETS=20`` (see :func:`rlbook.seeds.train_keys`): every
training behind a claim runs on 20 independent seed sets in one vmapped batch, and
:func:`check` records the statistic of each set instead of asserting it. The records
are merged into ``book/calibration.json``, which the book's calibration page shows.

In an ordinary build (one seed set) :func:`check` asserts the claim on the build's set
and also that the calibrated distribution of its statistic sits at least
``MIN_MARGIN`` standard deviations on the right side of the threshold (so that, for a
roughly normal statistic, a build fails this claim with probability about 1e-3 or
less), and that every calibrated set satisfies the claim (a guard for statistics with
a heavy tail, such as the worst of five seeds). A claim with no calibration record, a
threshold other than the calibrated one, or too small a margin, fails the build.

Chapters compute the statistic per seed set with :func:`per_set`, which reshapes the
leading ``[sets * count]`` axis of per-seed results into ``[sets, count]``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rlbook import _checks, seeds

__all__ = [
    "MIN_MARGIN",
    "CALIBRATION",
    "Claim",
    "calibrating",
    "per_set",
    "check",
    "load",
    "margin",
    "worst",
    "z_bound",
]

MIN_MARGIN = 3.0
"""Standard deviations of the calibrated statistic between its mean and the threshold that
:func:`check` requires: about 1e-3 false failures per build for a roughly normal statistic."""
CALIBRATION = Path(__file__).resolve().parents[2] / "book" / "calibration.json"
"""The calibration records that ``make calibrate`` writes and :func:`check` reads."""
OUT_ENV = "RLBOOK_CALIBRATION_OUT"


def z_bound(count: int = 1, p: float = 1e-4) -> float:
    """Tolerance, in standard errors, of a Monte-Carlo check making ``count`` comparisons.

    The :math:`|z|` that ``count`` standard-normal statistics all stay below except with
    probability at most ``p`` (two-sided, Bonferroni), and never less than 4 (a two-sided
    tail of 6e-5): a correct estimator fails the check with probability at most ``p``.
    """
    if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    if not (isinstance(p, (int, float, np.floating)) and 0 < p < 1):
        raise ValueError(f"p must lie in (0, 1), got {p!r}")
    from scipy import stats

    return max(4.0, float(stats.norm.isf(p / (2 * count))))


@dataclass(frozen=True)
class Claim:
    """What :func:`check` found: the build's statistic and the calibrated margin."""

    name: str
    value: float
    threshold: float
    above: bool
    margin: float  # (mean − threshold) / sd over the calibrated sets, sign-adjusted
    mean: float
    sd: float
    sets: int


def calibrating() -> bool:
    """True when the chapter runs under ``make calibrate`` (more than one seed set)."""
    return seeds.seed_sets() > 1


def per_set(values, *, allow_nonfinite: bool = False) -> np.ndarray:
    """Per-seed results ``[sets * count, ...]`` as ``[sets, count, ...]``.

    ``values`` must be real (numbers or bools) and finite: a NaN or ±∞ among per-seed
    results would otherwise pass silently into a claim's statistic. Results in which
    non-finite entries carry meaning (a diverged run's ∞ error, kept for a plot or a
    count) pass ``allow_nonfinite=True``.
    """
    _checks.flag("allow_nonfinite", allow_nonfinite)
    _checks.real("values", values)
    if not allow_nonfinite:
        _checks.finite("values", values)
    values = np.asarray(values)
    k = seeds.seed_sets()
    if values.ndim == 0 or values.shape[0] % k:
        raise ValueError(
            f"values must have a leading axis that is a multiple of the "
            f"{k} seed sets, got shape {values.shape}"
        )
    return values.reshape(k, values.shape[0] // k, *values.shape[1:])


def margin(values, threshold: float, above: bool) -> tuple[float, float, float]:
    """(margin, mean, sd) of calibrated statistics against a threshold.

    ``values`` (at least one) and ``threshold`` must be finite real numbers and ``above``
    a bool.
    """
    _check_values(values)
    _checks.real("threshold", threshold)
    if np.ndim(threshold) != 0:
        raise ValueError(f"threshold must be a scalar, got shape {np.shape(threshold)}")
    _checks.finite("threshold", threshold)
    _checks.flag("above", above)
    v = np.asarray(values, float)
    mean = float(v.mean())
    sd = float(v.std(ddof=1)) if v.size > 1 else float("nan")
    gap = (mean - threshold) if above else (threshold - mean)
    if sd == 0:
        return (math.inf if gap > 0 else -math.inf), mean, sd
    return gap / sd, mean, sd


def worst(values, above: bool) -> float:
    """The calibrated set closest to failing: the smallest statistic of a claim "above".

    ``values`` (at least one) must be finite real numbers and ``above`` a bool.
    """
    _check_values(values)
    _checks.flag("above", above)
    v = np.asarray(values, float)
    return float(v.min() if above else v.max())


def _check_values(values) -> None:
    """Calibrated statistics: at least one, each a finite real number."""
    _checks.real("values", values)
    _checks.finite("values", values)
    if np.size(values) == 0:
        raise ValueError("values must hold at least one statistic, got none")


def load(path: Path | str | None = None) -> dict:
    """The calibration records: ``{name: {values, threshold, above, chapter, text}}``."""
    path = Path(path) if path else CALIBRATION
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def check(name: str, statistic, threshold: float, *, above: bool = True, text: str = "") -> Claim:
    """Check the learning claim ``name``: ``statistic`` (one value per seed set) above
    (or below, ``above=False``) ``threshold``; see the module docstring.

    ``text`` says in words what is claimed (shown on the calibration page).
    """
    if not isinstance(name, str) or "/" not in name:
        raise ValueError(f"name must be 'chapter/claim', got {name!r}")
    stat = np.atleast_1d(np.asarray(statistic, float))
    if stat.ndim != 1 or stat.shape[0] != seeds.seed_sets():
        raise ValueError(
            f"statistic must hold one value per seed set ({seeds.seed_sets()}), "
            f"got shape {stat.shape}"
        )
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    if calibrating():
        out = Path(os.environ.get(OUT_ENV, "calibration-records"))
        out.mkdir(parents=True, exist_ok=True)
        record = dict(
            name=name,
            values=[float(x) for x in stat],
            threshold=float(threshold),
            above=bool(above),
            text=text,
            seed=seeds.build_seed(),
        )
        (out / (name.replace("/", "__") + ".json")).write_text(json.dumps(record, indent=1))
        m, mean, sd = margin(stat, threshold, above)
        return Claim(name, float(stat[0]), float(threshold), above, m, mean, sd, len(stat))
    value = float(stat[0])
    holds = value >= threshold if above else value <= threshold
    sign = "≥" if above else "≤"
    assert holds, f"learning claim {name} failed: {value:.4g} is not {sign} {threshold:.4g}"
    rec = load().get(name)
    assert rec is not None, (
        f"learning claim {name} has no calibration record in "
        f"{CALIBRATION.name}: run `make calibrate`"
    )
    assert rec["above"] == above, f"learning claim {name} changed direction: run `make calibrate`"
    assert np.isclose(rec["threshold"], threshold, rtol=1e-12, atol=0), (
        f"learning claim {name}: threshold {threshold:.6g} differs from the calibrated record's "
        f"{rec['threshold']:.6g}: run `make calibrate`"
    )
    m, mean, sd = margin(rec["values"], threshold, above)
    assert m >= MIN_MARGIN, (
        f"learning claim {name}: threshold {threshold:.4g} sits {m:.2f} "
        f"sd from the calibrated mean {mean:.4g} (sd {sd:.3g}); "
        f"at least {MIN_MARGIN} is required"
    )
    # A statistic with a heavy tail (the worst of five seeds, say) can sit 3 sd away and
    # still fail now and then: every calibrated set must satisfy the claim as well.
    worst_set = worst(rec["values"], above)
    assert (worst_set >= threshold) if above else (worst_set <= threshold), (
        f"learning claim {name}: a calibrated seed set fails it ({worst_set:.4g})"
    )
    return Claim(name, value, float(threshold), above, m, mean, sd, len(rec["values"]))
