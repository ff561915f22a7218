"""Sum-of-exponentials models of a time–activity curve, with analytic Jacobians and 0→∞ integrals.

All models are functions of time after administration ``t`` (h) with amplitudes in MBq and rate
constants in 1/h (effective: physical decay plus biological clearance, since measured activities are
not decay-corrected):

* ``mono``: :math:`A(t) = A_1 e^{-\\lambda_1 t}`
* ``bi`` (uptake and washout): :math:`A(t) = A_1 (e^{-\\lambda_1 t} - e^{-\\lambda_2 t})`, with the
  washout rate :math:`\\lambda_1` smaller than the uptake rate :math:`\\lambda_2`
* ``tri`` (uptake and two washout phases):
  :math:`A(t) = A_1 e^{-\\lambda_1 t} + A_2 e^{-\\lambda_2 t} - (A_1 + A_2) e^{-\\lambda_3 t}`,
  with :math:`\\lambda_1 < \\lambda_2` (so :math:`\\lambda_1` is the terminal phase) and
  :math:`A(0) = 0`

These are sums of exponentials of the kind fitted by NUKFIT (Kletting P et al. "Molecular radiotherapy:
the NUKFIT software for calculating the time-integrated activity coefficient", Med Phys 2013;40:102504),
integrated as in MIRD Pamphlet 21 (Bolch et al. 2009, JNM 50:477):
:math:`\\int_0^\\infty A_i e^{-\\lambda_i t}\\,dt = A_i/\\lambda_i`.

Each model gives the value, the Jacobian with respect to its parameters (for weighted least squares),
the analytic integral from 0 to ∞ and its gradient (for propagating the parameter covariance to the
time-integrated activity by the delta method), and the terminal rate constant.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

ModelName = Literal[
    "mono",
    "bi",
    "tri",
    "trapezoid",
    "trapezoid_mono",
    "physical",
    "bi_physical",
    "mono_physical",
    "bi_washout",
    "tri_physical",
]
ExponentialModelName = Literal["mono", "bi", "tri"]
#: Forms with a term that decays by physical decay alone (biological rate 0); they need the nuclide.
PhysicalModelName = Literal["physical", "bi_physical", "mono_physical", "bi_washout", "tri_physical"]
AnyExponentialName = Literal[
    "mono", "bi", "tri", "physical", "bi_physical", "mono_physical", "bi_washout", "tri_physical"
]

#: Largest exponent passed to ``exp`` (float64 overflows just above 709); a rate constant that makes
#: the curve grow this much is non-physical and is rejected after the fit, never used.
_MAX_EXPONENT = 700.0


def _decay(rate_per_h: float, time_h: FloatArray) -> FloatArray:
    """``exp(-rate·t)`` with the exponent clipped so that growing curves do not overflow."""
    result: FloatArray = np.exp(np.minimum(-rate_per_h * time_h, _MAX_EXPONENT))
    return result


class ExponentialModel(ABC):
    """A sum-of-exponentials time–activity model (stateless; parameters are passed as arrays)."""

    name: ClassVar[str]
    parameter_names: ClassVar[tuple[str, ...]]
    #: Positions of the rate constants in the parameter vector.
    rate_indices: ClassVar[tuple[int, ...]]

    @property
    def n_parameters(self) -> int:
        """Number of fitted parameters."""
        return len(self.parameter_names)

    @abstractmethod
    def evaluate(self, params: FloatArray, time_h: FloatArray) -> FloatArray:
        """Activity (MBq) at ``time_h`` (h), shape of ``time_h``."""

    @abstractmethod
    def jacobian(self, params: FloatArray, time_h: FloatArray) -> FloatArray:
        """∂A/∂p, shape (len(time_h), n_parameters)."""

    @abstractmethod
    def integral(self, params: FloatArray) -> float:
        """Time-integrated activity from 0 to ∞, MBq·h (finite only for positive rates)."""

    @abstractmethod
    def integral_gradient(self, params: FloatArray) -> FloatArray:
        """Gradient of :meth:`integral` with respect to the parameters, shape (n_parameters,)."""

    #: Positions of the amplitudes (the parameters the model is linear in).
    amplitude_indices: ClassVar[tuple[int, ...]]

    @abstractmethod
    def basis(self, rates_per_h: FloatArray, time_h: FloatArray) -> FloatArray:
        """Columns multiplying the amplitudes for fixed rates, shape (len(time_h), n_amplitudes).

        ``evaluate(p, t) == basis(p[rate_indices], t) @ p[amplitude_indices]``: the model is linear in
        its amplitudes, which allows separable (variable projection) least squares.
        """

    def assemble(self, amplitudes_mbq: FloatArray, rates_per_h: FloatArray) -> FloatArray:
        """The parameter vector from amplitudes and rates."""
        params = np.empty(self.n_parameters)
        params[list(self.amplitude_indices)] = amplitudes_mbq
        params[list(self.rate_indices)] = rates_per_h
        return params

    def terminal_rate_index(self, params: FloatArray) -> int:
        """Position in ``params`` of the rate constant of the slowest (terminal) phase."""
        return min(self.rate_indices, key=lambda i: float(params[i]))

    def terminal_rate_per_h(self, params: FloatArray) -> float:
        """Rate constant of the slowest (terminal) phase, 1/h."""
        return float(params[self.terminal_rate_index(params)])

    @abstractmethod
    def canonical(self, params: FloatArray) -> FloatArray:
        """The same curve with parameters in the documented order (e.g. washout slower than uptake)."""

    @abstractmethod
    def non_physical_reason(self, params: FloatArray) -> str | None:
        """Why the (canonical) parameters describe a non-physical curve, or ``None`` if they do not."""

    def parameter_dict(self, params: FloatArray) -> dict[str, float]:
        """Parameters by name."""
        return {name: float(value) for name, value in zip(self.parameter_names, params, strict=True)}


def _rate_reasons(names: tuple[str, ...], rates: FloatArray) -> str | None:
    for name, rate in zip(names, rates, strict=True):
        if not rate > 0:
            return (
                f"fitted {name}={rate:.4g} is not positive: the curve does not clear (growing or flat tail, "
                "infinite time-integrated activity)"
            )
    return None


class MonoExponential(ExponentialModel):
    """:math:`A(t) = A_1 e^{-\\lambda_1 t}`; integral :math:`A_1/\\lambda_1` (MIRD Pamphlet 21)."""

    name = "mono"
    parameter_names = ("a1_mbq", "lambda1_per_h")
    rate_indices = (1,)
    amplitude_indices = (0,)

    def basis(self, rates_per_h: FloatArray, time_h: FloatArray) -> FloatArray:
        return _decay(float(rates_per_h[0]), time_h)[:, None]

    def evaluate(self, params: FloatArray, time_h: FloatArray) -> FloatArray:
        a1, l1 = params
        result: FloatArray = a1 * _decay(l1, time_h)
        return result

    def jacobian(self, params: FloatArray, time_h: FloatArray) -> FloatArray:
        a1, l1 = params
        e1 = _decay(l1, time_h)
        return np.column_stack((e1, -a1 * time_h * e1))

    def integral(self, params: FloatArray) -> float:
        a1, l1 = params
        return float(a1 / l1)

    def integral_gradient(self, params: FloatArray) -> FloatArray:
        a1, l1 = params
        return np.array([1.0 / l1, -a1 / l1**2])

    def canonical(self, params: FloatArray) -> FloatArray:
        return np.asarray(params, dtype=np.float64).copy()

    def non_physical_reason(self, params: FloatArray) -> str | None:
        reason = _rate_reasons(("lambda1_per_h",), params[1:2])
        if reason is not None:
            return reason
        if not params[0] > 0:
            return f"fitted a1_mbq={params[0]:.4g} is not positive: the curve would not be positive"
        return None


class BiExponential(ExponentialModel):
    """Uptake and washout: :math:`A(t) = A_1 (e^{-\\lambda_1 t} - e^{-\\lambda_2 t})`.

    Integral :math:`A_1 (1/\\lambda_1 - 1/\\lambda_2)`. The curve is unchanged by swapping the two rates
    and negating :math:`A_1`; :meth:`canonical` picks :math:`\\lambda_1 < \\lambda_2` (washout slower than
    uptake), for which a physical curve has :math:`A_1 > 0`.
    """

    name = "bi"
    parameter_names = ("a1_mbq", "lambda1_per_h", "lambda2_per_h")
    rate_indices = (1, 2)
    amplitude_indices = (0,)

    def basis(self, rates_per_h: FloatArray, time_h: FloatArray) -> FloatArray:
        l1, l2 = rates_per_h
        return (_decay(l1, time_h) - _decay(l2, time_h))[:, None]

    def evaluate(self, params: FloatArray, time_h: FloatArray) -> FloatArray:
        a1, l1, l2 = params
        result: FloatArray = a1 * (_decay(l1, time_h) - _decay(l2, time_h))
        return result

    def jacobian(self, params: FloatArray, time_h: FloatArray) -> FloatArray:
        a1, l1, l2 = params
        e1 = _decay(l1, time_h)
        e2 = _decay(l2, time_h)
        return np.column_stack((e1 - e2, -a1 * time_h * e1, a1 * time_h * e2))

    def integral(self, params: FloatArray) -> float:
        a1, l1, l2 = params
        return float(a1 * (1.0 / l1 - 1.0 / l2))

    def integral_gradient(self, params: FloatArray) -> FloatArray:
        a1, l1, l2 = params
        return np.array([1.0 / l1 - 1.0 / l2, -a1 / l1**2, a1 / l2**2])

    def canonical(self, params: FloatArray) -> FloatArray:
        a1, l1, l2 = (float(v) for v in params)
        if l1 > l2:
            return np.array([-a1, l2, l1])
        return np.array([a1, l1, l2])

    def non_physical_reason(self, params: FloatArray) -> str | None:
        a1, l1, l2 = params
        reason = _rate_reasons(("lambda1_per_h", "lambda2_per_h"), params[1:3])
        if reason is not None:
            return reason
        if math.isclose(l1, l2, rel_tol=1e-9):
            return f"washout and uptake rates coincide ({l1:.4g} 1/h): the curve is identically zero"
        if not a1 > 0:
            return f"fitted a1_mbq={a1:.4g} is not positive: the curve would not be positive"
        return None


class TriExponential(ExponentialModel):
    """Uptake and two washout phases.

    :math:`A(t) = A_1 e^{-\\lambda_1 t} + A_2 e^{-\\lambda_2 t} - (A_1 + A_2) e^{-\\lambda_3 t}`
    (so :math:`A(0) = 0`), integral
    :math:`A_1/\\lambda_1 + A_2/\\lambda_2 - (A_1 + A_2)/\\lambda_3`. :meth:`canonical` orders the two
    washout phases so that :math:`\\lambda_1 < \\lambda_2`; a physical curve has positive rates, a
    positive terminal amplitude :math:`A_1` and a positive integral.
    """

    name = "tri"
    parameter_names = ("a1_mbq", "lambda1_per_h", "a2_mbq", "lambda2_per_h", "lambda3_per_h")
    rate_indices = (1, 3, 4)
    amplitude_indices = (0, 2)

    def basis(self, rates_per_h: FloatArray, time_h: FloatArray) -> FloatArray:
        l1, l2, l3 = rates_per_h
        e3 = _decay(l3, time_h)
        return np.column_stack((_decay(l1, time_h) - e3, _decay(l2, time_h) - e3))

    def evaluate(self, params: FloatArray, time_h: FloatArray) -> FloatArray:
        a1, l1, a2, l2, l3 = params
        result: FloatArray = (
            a1 * _decay(l1, time_h) + a2 * _decay(l2, time_h) - (a1 + a2) * _decay(l3, time_h)
        )
        return result

    def jacobian(self, params: FloatArray, time_h: FloatArray) -> FloatArray:
        a1, l1, a2, l2, l3 = params
        e1 = _decay(l1, time_h)
        e2 = _decay(l2, time_h)
        e3 = _decay(l3, time_h)
        return np.column_stack(
            (e1 - e3, -a1 * time_h * e1, e2 - e3, -a2 * time_h * e2, (a1 + a2) * time_h * e3)
        )

    def integral(self, params: FloatArray) -> float:
        a1, l1, a2, l2, l3 = params
        return float(a1 / l1 + a2 / l2 - (a1 + a2) / l3)

    def integral_gradient(self, params: FloatArray) -> FloatArray:
        a1, l1, a2, l2, l3 = params
        return np.array(
            [1.0 / l1 - 1.0 / l3, -a1 / l1**2, 1.0 / l2 - 1.0 / l3, -a2 / l2**2, (a1 + a2) / l3**2]
        )

    def canonical(self, params: FloatArray) -> FloatArray:
        a1, l1, a2, l2, l3 = (float(v) for v in params)
        if l1 > l2:
            a1, l1, a2, l2 = a2, l2, a1, l1
        return np.array([a1, l1, a2, l2, l3])

    def non_physical_reason(self, params: FloatArray) -> str | None:
        a1, l1, a2, l2, l3 = params
        reason = _rate_reasons(
            ("lambda1_per_h", "lambda2_per_h", "lambda3_per_h"), np.array([l1, l2, l3], dtype=np.float64)
        )
        if reason is not None:
            return reason
        terminal = min(l1, l2, l3)
        if terminal == l3:
            amplitude = -(a1 + a2)
        elif terminal == l1:
            amplitude = a1
        else:
            amplitude = a2
        if not amplitude > 0:
            return (
                f"the terminal phase (rate {terminal:.4g} 1/h) has amplitude {amplitude:.4g} MBq: "
                "the curve would become negative"
            )
        if not self.integral(params) > 0:
            return f"time-integrated activity {self.integral(params):.4g} MBq·h is not positive"
        return None


MODELS: dict[ExponentialModelName, ExponentialModel] = {
    "mono": MonoExponential(),
    "bi": BiExponential(),
    "tri": TriExponential(),
}


# ------------------------------------------------------------------------------------------------
# Parameter-sparse forms with the physical decay built in (NUKFIT style)
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Term:
    """One exponential term: amplitude ``coefficients · a`` (a: the free amplitudes) and rate constant
    ``rates[rate]`` (a fitted effective rate) or the physical decay constant (``rate is None``)."""

    coefficients: tuple[float, ...]
    rate: int | None


class SumOfExponentials(ExponentialModel):
    """A sum of exponentials in which some terms decay by physical decay alone.

    :math:`A(t) = \\sum_k c_k(a)\\, e^{-\\kappa_k t}` with :math:`\\kappa_k` either a fitted effective rate
    constant or the nuclide's physical decay constant :math:`\\lambda_p` (biological rate 0), and the term
    amplitudes :math:`c_k` linear in the free amplitudes :math:`a`. This is the construction of the
    NUKFIT function library (Kletting P et al. Med Phys 2013;40:102504): sums of exponentials
    :math:`\\sum_i A_i e^{-(\\lambda_i + \\lambda_p) t}` with the physical decay built in, and
    parameter-sparse members obtained by fixing a biological rate to 0 (a term that only decays
    physically) or tying amplitudes (:math:`A(0) = 0` for an uptake phase). Integral
    :math:`\\sum_k c_k/\\kappa_k` (MIRD Pamphlet 21).

    Instances carry :math:`\\lambda_p`; they are made by :func:`get_model`.
    """

    terms: ClassVar[tuple[_Term, ...]]
    n_rates: ClassVar[int]

    def __init__(self, decay_constant_per_h: float) -> None:
        if not (math.isfinite(decay_constant_per_h) and decay_constant_per_h > 0):
            raise ValueError(f"decay_constant_per_h must be positive; got {decay_constant_per_h}")
        self.decay_constant_per_h = float(decay_constant_per_h)

    def _term_rates(self, rates: FloatArray) -> FloatArray:
        return np.array(
            [
                self.decay_constant_per_h if term.rate is None else float(rates[term.rate])
                for term in self.terms
            ]
        )

    def _term_amplitudes(self, amplitudes: FloatArray) -> FloatArray:
        return np.array([float(np.dot(term.coefficients, amplitudes)) for term in self.terms])

    def _split(self, params: FloatArray) -> tuple[FloatArray, FloatArray]:
        p = np.asarray(params, dtype=np.float64)
        return p[list(self.amplitude_indices)], p[list(self.rate_indices)]

    def basis(self, rates_per_h: FloatArray, time_h: FloatArray) -> FloatArray:
        kappa = self._term_rates(np.asarray(rates_per_h, dtype=np.float64))
        n_amplitudes = len(self.amplitude_indices)
        columns = np.zeros((np.size(time_h), n_amplitudes))
        for term, rate in zip(self.terms, kappa, strict=True):
            decay = _decay(float(rate), np.asarray(time_h, dtype=np.float64))
            for j, coefficient in enumerate(term.coefficients):
                if coefficient:
                    columns[:, j] += coefficient * decay
        return columns

    def evaluate(self, params: FloatArray, time_h: FloatArray) -> FloatArray:
        amplitudes, rates = self._split(params)
        result: FloatArray = self.basis(rates, np.asarray(time_h, dtype=np.float64)) @ amplitudes
        return result

    def jacobian(self, params: FloatArray, time_h: FloatArray) -> FloatArray:
        t = np.asarray(time_h, dtype=np.float64)
        amplitudes, rates = self._split(params)
        jac = np.zeros((t.size, self.n_parameters))
        jac[:, list(self.amplitude_indices)] = self.basis(rates, t)
        kappa = self._term_rates(rates)
        c = self._term_amplitudes(amplitudes)
        for term, rate, amplitude in zip(self.terms, kappa, c, strict=True):
            if term.rate is not None:
                jac[:, self.rate_indices[term.rate]] += -amplitude * t * _decay(float(rate), t)
        return jac

    def integral(self, params: FloatArray) -> float:
        amplitudes, rates = self._split(params)
        return float(np.sum(self._term_amplitudes(amplitudes) / self._term_rates(rates)))

    def integral_gradient(self, params: FloatArray) -> FloatArray:
        amplitudes, rates = self._split(params)
        kappa = self._term_rates(rates)
        c = self._term_amplitudes(amplitudes)
        gradient = np.zeros(self.n_parameters)
        for term, rate, amplitude in zip(self.terms, kappa, c, strict=True):
            for j, coefficient in enumerate(term.coefficients):
                gradient[self.amplitude_indices[j]] += coefficient / rate
            if term.rate is not None:
                gradient[self.rate_indices[term.rate]] += -amplitude / rate**2
        return gradient

    def terminal_rate_index(self, params: FloatArray) -> int:
        """Position of the slowest fitted rate (see :meth:`terminal_rate_per_h` for the slowest phase)."""
        return min(self.rate_indices, key=lambda i: float(params[i])) if self.rate_indices else -1

    def terminal_rate_per_h(self, params: FloatArray) -> float:
        _, rates = self._split(params)
        return float(np.min(self._term_rates(rates)))

    def terminal_is_physical(self, params: FloatArray) -> bool:
        """Whether the slowest phase is the physical-decay term (its rate is then exact, not fitted)."""
        _, rates = self._split(params)
        kappa = self._term_rates(rates)
        slowest = int(np.argmin(kappa))
        return self.terms[slowest].rate is None

    def canonical(self, params: FloatArray) -> FloatArray:
        return np.asarray(params, dtype=np.float64).copy()

    def non_physical_reason(self, params: FloatArray) -> str | None:
        amplitudes, rates = self._split(params)
        names = tuple(self.parameter_names[i] for i in self.rate_indices)
        reason = _rate_reasons(names, rates)
        if reason is not None:
            return reason
        kappa = self._term_rates(rates)
        if np.unique(np.round(kappa / kappa.max(), 12)).size < kappa.size:
            return f"two phases have the same rate constant ({', '.join(f'{k:.4g}' for k in kappa)} 1/h)"
        c = self._term_amplitudes(amplitudes)
        slowest = int(np.argmin(kappa))
        if not c[slowest] > 0:
            return (
                f"the terminal phase (rate {kappa[slowest]:.4g} 1/h) has amplitude {c[slowest]:.4g} MBq: "
                "the curve would become negative"
            )
        if not self.integral(params) > 0:
            return f"time-integrated activity {self.integral(params):.4g} MBq·h is not positive"
        return None

    def start_rates(self, tail_rate_per_h: float, peak_time_h: float) -> list[FloatArray]:
        """Starting rate vectors for the fit (data-derived guesses; the amplitudes are then linear)."""
        raise NotImplementedError  # pragma: no cover - every concrete form overrides it


class PhysicalDecay(SumOfExponentials):
    """No biological clearance: :math:`A(t) = A_1 e^{-\\lambda_p t}`; integral :math:`A_1/\\lambda_p`.

    One parameter (NUKFIT's sparsest member): uptake before the first measurement and retention
    thereafter.
    """

    name = "physical"
    parameter_names = ("a1_mbq",)
    amplitude_indices = (0,)
    rate_indices = ()
    terms = (_Term((1.0,), None),)
    n_rates = 0

    def start_rates(self, tail_rate_per_h: float, peak_time_h: float) -> list[FloatArray]:
        return [np.zeros(0)]


class BiPhysical(SumOfExponentials):
    """Uptake, then physical decay only: :math:`A(t) = A_1 (e^{-\\lambda_p t} - e^{-\\lambda_2 t})`.

    Two parameters; :math:`\\lambda_2 > \\lambda_p` is the effective uptake rate. Integral
    :math:`A_1 (1/\\lambda_p - 1/\\lambda_2)`. Usable with 3 time points.
    """

    name = "bi_physical"
    parameter_names = ("a1_mbq", "lambda2_per_h")
    amplitude_indices = (0,)
    rate_indices = (1,)
    terms = (_Term((1.0,), None), _Term((-1.0,), 0))
    n_rates = 1

    def start_rates(self, tail_rate_per_h: float, peak_time_h: float) -> list[FloatArray]:
        lp = self.decay_constant_per_h
        guesses = [10.0 * lp, 100.0 * lp]
        if peak_time_h > 0:
            guesses.insert(0, max(3.0 / peak_time_h, 1.5 * lp))
        return [np.array([g]) for g in guesses]


class MonoPhysical(SumOfExponentials):
    """Washout of a fraction, retention of the rest:
    :math:`A(t) = A_1 e^{-\\lambda_1 t} + A_2 e^{-\\lambda_p t}`.

    Three parameters; integral :math:`A_1/\\lambda_1 + A_2/\\lambda_p`.
    """

    name = "mono_physical"
    parameter_names = ("a1_mbq", "lambda1_per_h", "a2_mbq")
    amplitude_indices = (0, 2)
    rate_indices = (1,)
    terms = (_Term((1.0, 0.0), 0), _Term((0.0, 1.0), None))
    n_rates = 1

    def start_rates(self, tail_rate_per_h: float, peak_time_h: float) -> list[FloatArray]:
        lp = self.decay_constant_per_h
        return [np.array([max(3.0 * tail_rate_per_h, 2.0 * lp)]), np.array([10.0 * lp]), np.array([0.1])]


class BiWashout(SumOfExponentials):
    """Two washout phases without uptake: :math:`A(t) = A_1 e^{-\\lambda_1 t} + A_2 e^{-\\lambda_2 t}`.

    Four parameters; :meth:`canonical` orders :math:`\\lambda_1 < \\lambda_2`. Integral
    :math:`A_1/\\lambda_1 + A_2/\\lambda_2`. (Its terms decay faster than physical decay; it is listed
    here because its admissibility is checked against the nuclide like the others.)
    """

    name = "bi_washout"
    parameter_names = ("a1_mbq", "lambda1_per_h", "a2_mbq", "lambda2_per_h")
    amplitude_indices = (0, 2)
    rate_indices = (1, 3)
    terms = (_Term((1.0, 0.0), 0), _Term((0.0, 1.0), 1))
    n_rates = 2

    def canonical(self, params: FloatArray) -> FloatArray:
        a1, l1, a2, l2 = (float(v) for v in params)
        if l1 > l2:
            return np.array([a2, l2, a1, l1])
        return np.array([a1, l1, a2, l2])

    def start_rates(self, tail_rate_per_h: float, peak_time_h: float) -> list[FloatArray]:
        slow = max(tail_rate_per_h, 1.01 * self.decay_constant_per_h)
        return [np.array([slow, 10.0 * slow]), np.array([slow, 100.0 * slow])]


class TriPhysical(SumOfExponentials):
    """Uptake, washout of a fraction and retention of the rest:
    :math:`A(t) = A_1 e^{-\\lambda_1 t} + A_2 e^{-\\lambda_p t} - (A_1 + A_2) e^{-\\lambda_3 t}`.

    Four parameters (the tri-exponential with its slow biological rate fixed at 0); :math:`A(0) = 0`.
    Integral :math:`A_1/\\lambda_1 + A_2/\\lambda_p - (A_1 + A_2)/\\lambda_3`.
    """

    name = "tri_physical"
    parameter_names = ("a1_mbq", "lambda1_per_h", "a2_mbq", "lambda3_per_h")
    amplitude_indices = (0, 2)
    rate_indices = (1, 3)
    terms = (_Term((1.0, 0.0), 0), _Term((0.0, 1.0), None), _Term((-1.0, -1.0), 1))
    n_rates = 2

    def start_rates(self, tail_rate_per_h: float, peak_time_h: float) -> list[FloatArray]:
        lp = self.decay_constant_per_h
        washout = max(3.0 * tail_rate_per_h, 2.0 * lp)
        uptake = max(3.0 / peak_time_h, 10.0 * washout) if peak_time_h > 0 else 10.0 * washout
        return [np.array([washout, uptake]), np.array([10.0 * lp, 100.0 * lp])]


#: Parameter-sparse forms with a physical-decay term, by name (instantiated with the nuclide's λp).
PHYSICAL_MODELS: dict[str, type[SumOfExponentials]] = {
    "physical": PhysicalDecay,
    "bi_physical": BiPhysical,
    "mono_physical": MonoPhysical,
    "bi_washout": BiWashout,
    "tri_physical": TriPhysical,
}

#: Every exponential form, in order of increasing number of parameters (the NUKFIT-style library).
LIBRARY: tuple[str, ...] = (
    "physical",
    "mono",
    "bi_physical",
    "bi",
    "mono_physical",
    "bi_washout",
    "tri_physical",
    "tri",
)


def get_model(name: str, *, decay_constant_per_h: float | None = None) -> ExponentialModel:
    """The model instance for ``name``.

    ``"mono"``, ``"bi"`` and ``"tri"`` need nothing else; the forms with a physical-decay term
    (:data:`PHYSICAL_MODELS`) need the nuclide's physical decay constant (1/h).

    Raises
    ------
    InputError
        Unknown name, or a physical-decay form without ``decay_constant_per_h``.
    """
    from theradose.errors import InputError

    if name in MODELS:
        return MODELS[name]
    if name in PHYSICAL_MODELS:
        if decay_constant_per_h is None:
            raise InputError(
                f"model {name!r} has a physical-decay term and needs decay_constant_per_h: give the nuclide "
                "(--nuclide)"
            )
        return PHYSICAL_MODELS[name](decay_constant_per_h)
    raise InputError(f"model must be one of {', '.join(LIBRARY)}; got {name!r}: pick one of those")
