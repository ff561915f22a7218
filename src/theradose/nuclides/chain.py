"""Decay chains and the energy emitted per decay of the parent at equilibrium.

For a parent P with decay constant λ_P and a daughter D (decay constant λ_D > λ_P) fed with branching
fraction b, after long times every member decays with λ_P and the activity ratio is
A_D / A_P = b · λ_D / (λ_D − λ_P) (transient equilibrium; secular when λ_D ≫ λ_P). Applied member by
member down the chain (Bateman 1910; e.g. Cember & Johnson, Introduction to Health Physics, ch. 4).
Daughters that live longer than the parent never reach equilibrium and end the chain there.

Two weights per member are kept apart:

* the **activity ratio** A_i/A_P above, for dose *rates* once equilibrium holds (e.g. the air-kerma-rate
  constant of ¹³⁷Cs with ¹³⁷ᵐBa);
* the **decays per parent decay**, the product of branching fractions along the chain (no λ factor), for
  the energy emitted per decay of the parent integrated over time — what a time-integrated activity of the
  parent multiplies in dosimetry. The two differ for transient equilibrium (e.g. ²¹²Pb/²¹²Bi by about
  10 %) and agree for secular equilibrium (²²⁵Ac).

The energy per parent decay Σ_i n_i · E_i (n_i decays per parent decay) is used for example for ²²⁵Ac,
whose α-emitting daughters ²²¹Fr, ²¹⁷At, ²¹³Bi and ²¹³Po deposit most of the energy.
"""

from __future__ import annotations

from dataclasses import dataclass

from theradose.nuclides.data import Nuclide, available_nuclides, get_nuclide


@dataclass(frozen=True)
class ChainMember:
    """One member of a decay chain with its equilibrium activity per unit parent activity."""

    name: str
    activity_ratio: float
    half_life_h: float
    in_equilibrium: bool
    decays_per_parent_decay: float = 0.0


@dataclass(frozen=True)
class ChainEnergies:
    """Energy emitted per decay of the parent, summed over the chain at equilibrium (MeV)."""

    parent: str
    members: tuple[ChainMember, ...]
    alpha_energy_mev_per_decay: float
    alpha_recoil_energy_mev_per_decay: float
    beta_energy_mev_per_decay: float
    electron_energy_mev_per_decay: float
    photon_energy_mev_per_decay: float

    @property
    def total_energy_mev_per_decay(self) -> float:
        """All emitted energy per parent decay (MeV)."""
        return (
            self.alpha_energy_mev_per_decay
            + self.alpha_recoil_energy_mev_per_decay
            + self.electron_energy_mev_per_decay
            + self.photon_energy_mev_per_decay
        )


def decay_chain(nuclide: str | Nuclide) -> tuple[ChainMember, ...]:
    """Radioactive members of the chain of ``nuclide`` with their equilibrium activity ratios.

    The parent comes first with ratio 1. Stable daughters are omitted. A daughter longer-lived than the
    parent is listed with ``in_equilibrium=False`` and ratio 0, and its own progeny are not followed.
    """
    parent = get_nuclide(nuclide)
    lam_p = parent.decay_constant_per_h
    known = set(available_nuclides())
    ratios: dict[str, float] = {parent.name: 1.0}
    decays: dict[str, float] = {parent.name: 1.0}
    order: list[str] = [parent.name]
    excluded: dict[str, float] = {}
    queue = [parent.name]
    while queue:
        current = queue.pop(0)
        member = get_nuclide(current)
        for daughter, branching in member.progeny:
            if daughter not in known:
                continue  # stable (or not in ICRP-107): no emissions
            d = get_nuclide(daughter)
            if d.is_stable:
                continue
            lam_d = d.decay_constant_per_h
            if lam_d <= lam_p:
                excluded[daughter] = d.half_life_h
                continue
            contribution = ratios[current] * branching * lam_d / (lam_d - lam_p)
            if daughter not in ratios:
                ratios[daughter] = 0.0
                decays[daughter] = 0.0
                order.append(daughter)
            ratios[daughter] += contribution
            decays[daughter] += decays[current] * branching
            queue.append(daughter)
    members = [ChainMember(n, ratios[n], get_nuclide(n).half_life_h, True, decays[n]) for n in order]
    members += [ChainMember(n, 0.0, t, False) for n, t in excluded.items() if n not in ratios]
    return tuple(members)


def equilibrium_energies(nuclide: str | Nuclide) -> ChainEnergies:
    """Energy emitted per parent decay, summed over the chain members in equilibrium, each weighted by its
    number of decays per parent decay (see the module docstring).

    Examples
    --------
    ²²⁵Ac: four α decays per parent decay (²²⁵Ac, ²²¹Fr, ²¹⁷At, and ²¹³Po or ²⁰⁹Tl's parent ²¹³Bi).
    """
    members = decay_chain(nuclide)

    def total(attribute: str) -> float:
        return float(
            sum(
                m.decays_per_parent_decay * getattr(get_nuclide(m.name), attribute)
                for m in members
                if m.in_equilibrium
            )
        )

    return ChainEnergies(
        parent=get_nuclide(nuclide).name,
        members=members,
        alpha_energy_mev_per_decay=total("alpha_energy_mev_per_decay"),
        alpha_recoil_energy_mev_per_decay=total("alpha_recoil_energy_mev_per_decay"),
        beta_energy_mev_per_decay=total("beta_energy_mev_per_decay"),
        electron_energy_mev_per_decay=total("electron_energy_mev_per_decay"),
        photon_energy_mev_per_decay=total("photon_energy_mev_per_decay"),
    )
