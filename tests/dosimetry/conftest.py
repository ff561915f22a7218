"""Synthetic emitters with a few lines, so the MIRD arithmetic can be checked by hand."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pytest


@dataclass(frozen=True)
class Line:
    energy_kev: float
    yield_per_decay: float


@dataclass(frozen=True)
class FakeEmitter:
    name: str = "Fake-1"
    electron_lines: tuple[Line, ...] = ()
    photon_lines: tuple[Line, ...] = ()
    alpha_energy_mev_per_decay: float = 0.0
    spectrum: tuple[tuple[float, ...], tuple[float, ...]] = field(default=((), ()))

    def beta_spectrum(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        return np.asarray(self.spectrum[0], dtype=float), np.asarray(self.spectrum[1], dtype=float)


@pytest.fixture
def electron_emitter() -> FakeEmitter:
    """One 500 keV electron per decay, nothing else."""
    return FakeEmitter(name="E500", electron_lines=(Line(500.0, 1.0),))


@pytest.fixture
def mixed_emitter() -> FakeEmitter:
    """150 keV electrons (yield 1) and 200 keV photons (yield 0.5)."""
    return FakeEmitter(name="Mix", electron_lines=(Line(150.0, 1.0),), photon_lines=(Line(200.0, 0.5),))


@pytest.fixture
def make_emitter() -> type[FakeEmitter]:
    """The synthetic-emitter class, for tests that build their own."""
    return FakeEmitter
