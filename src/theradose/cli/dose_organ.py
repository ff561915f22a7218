"""``theradose dose sphere`` and ``theradose dose organ``: organ-level MIRD dosimetry."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from theradose.errors import InputError

REGION_FIELDS = (
    "name",
    "kind",
    "mass_g",
    "mass_sigma_g",
    "tia_mbq_h",
    "tia_sigma_mbq_h",
    "tia_mass_correlation",
)


def _number(value: Any, field: str, where: str, *, default: float | None = None) -> float:
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{where}: {field} must be a number; got {value!r}: fix the regions file")
    return float(value)


def read_regions_file(path: Path) -> dict[str, Any]:
    """Parse a regions JSON file into the arguments of :func:`theradose.dosimetry.organ.region_doses`."""
    from theradose.dosimetry.organ import Region

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"regions file {str(path)!r} does not exist: give the path of a JSON file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"regions file {str(path)!r} cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"regions file {str(path)!r} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(data, dict):
        raise InputError(f"regions file {str(path)!r} must hold a JSON object with 'nuclide' and 'regions'")
    nuclide = data.get("nuclide")
    if not isinstance(nuclide, str) or not nuclide:
        raise InputError(f"regions file {str(path)!r}: 'nuclide' must be a name such as \"Lu-177\"")
    activity = data.get("administered_activity_mbq")
    administered = None if activity is None else _number(activity, "administered_activity_mbq", str(path))
    raw_regions = data.get("regions")
    if not isinstance(raw_regions, list) or not raw_regions:
        raise InputError(f"regions file {str(path)!r}: 'regions' must be a non-empty list of objects")
    regions = []
    for index, raw in enumerate(raw_regions):
        where = f"regions[{index}]"
        if not isinstance(raw, dict):
            raise InputError(f"{where} must be an object with name, kind, mass_g, tia_mbq_h")
        unknown = sorted(set(raw) - set(REGION_FIELDS))
        if unknown:
            raise InputError(
                f"{where} has unknown field(s) {', '.join(unknown)}: allowed {', '.join(REGION_FIELDS)}"
            )
        for required in ("name", "mass_g", "tia_mbq_h"):
            if required not in raw:
                raise InputError(f"{where} lacks '{required}': add it")
        name = raw["name"]
        if not isinstance(name, str):
            raise InputError(f"{where}: name must be a string; got {name!r}")
        kind = raw.get("kind", "organ")
        if kind not in ("organ", "sphere"):
            raise InputError(f'{where} ({name}): kind must be "organ" or "sphere"; got {kind!r}')
        regions.append(
            Region(
                name=name,
                kind=kind,
                mass_g=_number(raw["mass_g"], "mass_g", where),
                tia_mbq_h=_number(raw["tia_mbq_h"], "tia_mbq_h", where),
                mass_sigma_g=_number(raw.get("mass_sigma_g"), "mass_sigma_g", where, default=0.0),
                tia_sigma_mbq_h=_number(raw.get("tia_sigma_mbq_h"), "tia_sigma_mbq_h", where, default=0.0),
                tia_mass_correlation=_number(
                    raw.get("tia_mass_correlation"), "tia_mass_correlation", where, default=0.0
                ),
            )
        )
    return {"regions": regions, "nuclide": nuclide, "administered_activity_mbq": administered}


def sphere(
    nuclide: Annotated[str, typer.Option("--nuclide", help="Nuclide name, e.g. Lu-177.")],
    mass_g: Annotated[float, typer.Option("--mass-g", help="Sphere mass in g (unit density).")],
    progeny: Annotated[
        bool,
        typer.Option("--progeny/--no-progeny", help="Include progeny in equilibrium (e.g. 225Ac chain)."),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Self-dose S value and absorbed fractions of a unit-density sphere (tumour model)."""
    from theradose.cli._output import print_json, print_mapping
    from theradose.dosimetry.sphere import sphere_s_value

    result = sphere_s_value(nuclide, mass_g=mass_g, include_progeny=progeny)
    data = {
        "nuclide": result.nuclide,
        "mass_g": result.mass_g,
        "radius_mm": result.radius_mm,
        "s_value_mgy_per_mbq_s": result.s_value_mgy_per_mbq_s,
        "electron_absorbed_fraction": result.electron_absorbed_fraction,
        "photon_absorbed_fraction": result.photon_absorbed_fraction,
        "s_electron_mgy_per_mbq_s": result.s_electron_mgy_per_mbq_s,
        "s_photon_mgy_per_mbq_s": result.s_photon_mgy_per_mbq_s,
        "s_alpha_mgy_per_mbq_s": result.s_alpha_mgy_per_mbq_s,
    }
    if as_json:
        print_json(data)
    else:
        print_mapping(f"{result.nuclide} sphere, {result.mass_g:g} g", data)


def organ(
    regions_file: Annotated[Path, typer.Argument(help="Regions JSON (nuclide, activity, regions).")],
    s_values: Annotated[
        Path | None,
        typer.Option("--s-values", help="CSV source,target,s_mgy_per_mbq_s with cross-dose S values."),
    ] = None,
    progeny: Annotated[
        bool,
        typer.Option("--progeny/--no-progeny", help="Include progeny in equilibrium (e.g. 225Ac chain)."),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Absorbed dose ± uncertainty per organ and tumour (MIRD schema, EANM uncertainty propagation)."""
    from theradose.cli._output import print_json, print_table
    from theradose.dosimetry.organ import region_doses
    from theradose.dosimetry.svalues import load_s_value_table

    parsed = read_regions_file(regions_file)
    table = None if s_values is None else load_s_value_table(s_values)
    doses = region_doses(
        parsed["regions"],
        parsed["nuclide"],
        administered_activity_mbq=parsed["administered_activity_mbq"],
        s_table=table,
        include_progeny=progeny,
    )
    rows = [
        {
            "name": d.name,
            "dose_gy": d.dose_gy,
            "dose_sigma_gy": d.dose_sigma_gy,
            "dose_gy_per_gbq": d.dose_gy_per_gbq,
        }
        for d in doses
    ]
    if as_json:
        print_json({"nuclide": parsed["nuclide"], "regions": rows})
    else:
        print_table(
            f"Absorbed dose ({parsed['nuclide']})",
            ["region", "mass (g)", "dose (Gy)", "± σ (Gy)", "Gy/GBq"],
            [
                (
                    d.name,
                    f"{d.mass_g:.4g}",
                    f"{d.dose_gy:.3g}",
                    f"{d.dose_sigma_gy:.2g}",
                    "-" if d.dose_gy_per_gbq is None else f"{d.dose_gy_per_gbq:.3g}",
                )
                for d in doses
            ],
        )


def register(app: typer.Typer) -> None:
    """Add ``sphere`` and ``organ`` to the ``dose`` group."""
    app.command("sphere")(sphere)
    app.command("organ")(organ)
