"""Population and individual effective half-lives as priors of time–activity-curve fits.

A :class:`HalfLifePrior` is a log-normal distribution of the effective half-life of a region's terminal
phase, :math:`\\ln T \\sim N(\\ln T_{50}, s^2)`. Since :math:`\\lambda = \\ln 2 / T`, the terminal rate
constant is log-normal with the same :math:`s` and median :math:`\\ln 2/T_{50}`; a MAP fit
(:func:`theradose.kinetics.fit_tac` with ``prior=``) adds the residual
:math:`(\\ln\\lambda - \\ln(\\ln 2/T_{50}))/s` to the weighted data residuals (a Gaussian prior on
:math:`\\ln\\lambda`, the augmented-data form of Bayesian least squares; Gelman A et al. *Bayesian Data
Analysis*, 3rd ed. 2013, §14.8). Effective half-lives are log-normally distributed between patients
(Hou X et al. J Nucl Med 2021;62:1006).

Sources of a prior:

* :func:`get_prior`: a population prior per tracer and region from ``data/kinetics/priors.toml`` (each
  entry cites what its source reported);
* :meth:`HalfLifePrior.from_estimate`: the patient's own effective half-life from an earlier cycle,
  with its standard uncertainty (the individual prior of later cycles; Willowson KP et al. EJNMMI Phys
  2018;5:33 found the cycle-1 half-life of the same patient predicts later cycles' renal kinetics);
* :meth:`HalfLifePrior.from_mean_sd` for a published mean ± SD.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from theradose.errors import DataError, InputError

_LN2 = math.log(2.0)


@dataclass(frozen=True)
class HalfLifePrior:
    """Log-normal prior of the effective half-life of a region's terminal phase.

    Attributes
    ----------
    median_h : float
        Median effective half-life :math:`T_{50}`, h (> 0).
    log_sigma : float
        Standard deviation of :math:`\\ln T` (> 0); e.g. 0.25 is a geometric SD of 1.28.
    source : str
        Where the numbers come from (citation, or "patient's cycle 1 fit").
    tracer, region : str or None
        Registry keys, for population priors.
    """

    median_h: float
    log_sigma: float
    source: str
    tracer: str | None = None
    region: str | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.median_h) and self.median_h > 0):
            raise InputError(f"median_h must be a positive number of hours; got {self.median_h}")
        if not (math.isfinite(self.log_sigma) and self.log_sigma > 0):
            raise InputError(
                f"log_sigma must be positive; got {self.log_sigma}: give the spread of ln(half-life)"
            )

    @property
    def rate_per_h(self) -> float:
        """Median terminal rate constant :math:`\\ln 2/T_{50}`, 1/h."""
        return _LN2 / self.median_h

    @classmethod
    def from_mean_sd(cls, mean_h: float, sd_h: float, *, source: str) -> HalfLifePrior:
        """Log-normal with the given mean and SD: :math:`s^2 = \\ln(1 + CV^2)`,
        :math:`T_{50} = \\bar T / \\sqrt{1 + CV^2}` (moments of the log-normal distribution)."""
        if not (math.isfinite(mean_h) and mean_h > 0 and math.isfinite(sd_h) and sd_h > 0):
            raise InputError(f"mean_h and sd_h must be positive; got {mean_h}, {sd_h}")
        cv2 = (sd_h / mean_h) ** 2
        return cls(mean_h / math.sqrt(1.0 + cv2), math.sqrt(math.log1p(cv2)), source)

    @classmethod
    def from_estimate(cls, half_life_h: float, sigma_h: float, *, source: str) -> HalfLifePrior:
        """An individual prior from an earlier fit: median ``half_life_h``, :math:`s = \\sigma_T/T` (the
        first-order relative uncertainty, equal to that of the rate constant)."""
        if not (math.isfinite(half_life_h) and half_life_h > 0):
            raise InputError(f"half_life_h must be positive; got {half_life_h}")
        if not (math.isfinite(sigma_h) and sigma_h > 0):
            raise InputError(
                f"sigma_h must be positive; got {sigma_h}: give the standard uncertainty of the half-life"
            )
        return cls(half_life_h, sigma_h / half_life_h, source)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        return {
            "median_h": self.median_h,
            "log_sigma": self.log_sigma,
            "source": self.source,
            "tracer": self.tracer,
            "region": self.region,
        }


def expected_normal_range(n: int) -> float:
    """Expected range of ``n`` independent standard-normal samples,
    :math:`d_n = \\int_{-\\infty}^{\\infty} [1 - \\Phi(x)^n - (1 - \\Phi(x))^n]\\,dx` (Tippett 1925,
    Biometrika 17:364; d_2 = 2/√π = 1.128, d_10 = 3.078)."""
    from scipy.integrate import quad
    from scipy.stats import norm

    if n < 2:
        raise InputError(f"n must be at least 2 for a range; got {n}")

    def integrand(x: float) -> float:
        return float(1.0 - norm.cdf(x) ** n - norm.sf(x) ** n)

    value, _ = quad(integrand, -12.0, 12.0, limit=200)
    return float(value)


def _key(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


@dataclass(frozen=True)
class _Entry:
    prior: HalfLifePrior
    aliases: tuple[str, ...]


@lru_cache(maxsize=1)
def _entries() -> tuple[_Entry, ...]:
    try:
        text = resources.files("theradose.data.kinetics").joinpath("priors.toml").read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise DataError("data/kinetics/priors.toml is missing: reinstall theradose") from exc
    raw = tomllib.loads(text)
    if raw.get("schema_version") != 1:
        raise DataError(
            f"priors.toml schema_version {raw.get('schema_version')!r} is not 1: reinstall theradose"
        )
    entries = []
    for item in raw.get("prior", []):
        try:
            tracer, region, citation = str(item["tracer"]), str(item["region"]), str(item["citation"])
            if item["statistic"] == "median_range":
                log_sigma = math.log(float(item["max_h"]) / float(item["min_h"])) / expected_normal_range(
                    int(item["n"])
                )
                prior = HalfLifePrior(float(item["median_h"]), log_sigma, citation, tracer, region)
            elif item["statistic"] == "mean_sd":
                base = HalfLifePrior.from_mean_sd(float(item["mean_h"]), float(item["sd_h"]), source=citation)
                prior = HalfLifePrior(base.median_h, base.log_sigma, citation, tracer, region)
            else:
                raise ValueError(f"unknown statistic {item['statistic']!r}")
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"priors.toml entry {item!r} is malformed ({exc}): reinstall theradose") from exc
        entries.append(_Entry(prior, tuple(_key(a) for a in item.get("aliases", []))))
    return tuple(entries)


def available_priors() -> tuple[tuple[str, str], ...]:
    """(tracer, region) of every population prior shipped."""
    return tuple((e.prior.tracer or "", e.prior.region or "") for e in _entries())


def get_prior(tracer: str, region: str) -> HalfLifePrior:
    """The population prior of ``region`` (or one of its aliases) for ``tracer`` (protocol name,
    e.g. ``"psma"``).

    Raises
    ------
    InputError
        No prior is shipped for that tracer and region (never a fallback to another organ or tracer).
    """
    tracer_key, region_key = _key(tracer), _key(region)
    for entry in _entries():
        if entry.prior.tracer == tracer_key and region_key in {
            _key(entry.prior.region or ""),
            *entry.aliases,
        }:
            return entry.prior
    known = ", ".join(f"{t}/{r}" for t, r in available_priors())
    raise InputError(
        f"no population half-life prior for tracer {tracer!r} and region {region!r} (available: {known}): "
        "fit without a prior or give the patient's own half-life"
    )
