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
from typing import ClassVar, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

ModelName = Literal["mono", "bi", "tri", "trapezoid"]
ExponentialModelName = Literal["mono", "bi", "tri"]

#: Largest exponent passed to ``exp`` (float64 overflows just above 709); a rate constant that makes
#: the curve grow this much is non-physical and is rejected after the fit, never used.
_MAX_EXPONENT = 700.0


def _decay(rate_per_h: float, time_h: FloatArray) -> FloatArray:
    """``exp(-rate·t)`` with the exponent clipped so that growing curves do not overflow."""
    result: FloatArray = np.exp(np.minimum(-rate_per_h * time_h, _MAX_EXPONENT))
    return result


class ExponentialModel(ABC):
    """A sum-of-exponentials time–activity model (stateless; parameters are passed as arrays)."""

    name: ClassVar[ExponentialModelName]
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


def get_model(name: ExponentialModelName) -> ExponentialModel:
    """The model instance for ``name`` (``"mono"``, ``"bi"`` or ``"tri"``)."""
    return MODELS[name]
