"""177Lu-PSMA organ dosimetry end to end: kinetics fit → dose organ → radiobiology bed.

Usage: python examples/organ_dosimetry/run.py [OUT_DIR]

Every step calls the ``theradose`` command line (``python -m theradose``) exactly as a user would, and
writes its JSON output to OUT_DIR (default ``organ-dosimetry-out``). If the ``kinetics`` command group
is not available in this installation, the time-integrated activities stored in ``regions.json`` are
used instead of fitted ones.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: Region → tissue whose default α/β and repair half-time apply to its BED.
BED_TISSUE = {
    "kidney_left": "kidney",
    "kidney_right": "kidney",
    "parotid_left": "salivary_glands",
    "parotid_right": "salivary_glands",
    "liver": "liver",
    "lesion_bone_t8": "tumour",
}


def theradose(*args: str) -> dict[str, object]:
    """Run ``theradose ARGS --json`` and return its JSON output (exit on failure with its message)."""
    result = subprocess.run(
        [sys.executable, "-m", "theradose", *args, "--json"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"theradose {' '.join(args)} failed: {result.stderr.strip()}")
    data: dict[str, object] = json.loads(result.stdout)
    return data


def kinetics_available() -> bool:
    probe = subprocess.run(
        [sys.executable, "-m", "theradose", "kinetics", "fit", "--help"], capture_output=True, text=True
    )
    return probe.returncode == 0


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    regions = json.loads((HERE / "regions.json").read_text())
    nuclide = regions["nuclide"]
    half_lives: dict[str, float | None] = {}
    uptake_half_lives: dict[str, float] = {}

    if kinetics_available():
        print("1. kinetics fit (per region, automatic model selection)")
        fits = {}
        for region in regions["regions"]:
            tac = HERE / "tac" / f"{region['name']}.csv"
            fit = theradose("kinetics", "fit", str(tac), "--nuclide", nuclide)
            fits[region["name"]] = fit
            region["tia_mbq_h"] = fit["tia_mbq_h"]
            region["tia_sigma_mbq_h"] = fit["tia_sigma_mbq_h"]
            half = fit.get("effective_half_life_h")
            half_lives[region["name"]] = float(half) if isinstance(half, (int, float)) else None
            if fit["model"] == "bi":  # A1 (exp(-λ1 t) - exp(-λ2 t)): λ2 is the uptake rate
                uptake_half_lives[region["name"]] = math.log(2.0) / float(fit["parameters"]["lambda2_per_h"])
            print(f"   {region['name']:<16} {fit['model']:<10} TIA {fit['tia_mbq_h']:9.0f} MBq·h")
        (out_dir / "kinetics.json").write_text(json.dumps(fits, indent=2))
    else:
        print("1. kinetics: command not available here, using the TIAs stored in regions.json")
        half_lives = {name: None for name in BED_TISSUE}

    regions_file = out_dir / "regions.json"
    regions_file.write_text(json.dumps(regions, indent=2))

    print("2. dose organ (MIRD, patient masses, EANM uncertainty)")
    doses = theradose("dose", "organ", str(regions_file))
    (out_dir / "doses.json").write_text(json.dumps(doses, indent=2))
    by_name = {}
    for row in doses["regions"]:  # type: ignore[union-attr]
        by_name[row["name"]] = row
        print(
            f"   {row['name']:<16} {row['dose_gy']:7.2f} ± {row['dose_sigma_gy']:5.2f} Gy"
            f"   ({row['dose_gy_per_gbq']:.3f} Gy/GBq)"
        )

    print("3. radiobiology bed (tissue defaults, effective half-life of each region)")
    stored_half_lives = json.loads((HERE / "effective_half_lives.json").read_text())
    beds = {}
    for name, tissue in BED_TISSUE.items():
        half = half_lives.get(name) or stored_half_lives[name]
        args = [
            "radiobiology", "bed", "--dose-gy", str(by_name[name]["dose_gy"]),
            "--dose-sigma-gy", str(by_name[name]["dose_sigma_gy"]),
            "--effective-half-life-h", str(half), "--tissue", tissue,
        ]  # fmt: skip
        if name in uptake_half_lives:
            args += ["--uptake-half-life-h", str(uptake_half_lives[name])]
        bed = theradose(*args)
        beds[name] = bed
        shape = "uptake+washout" if name in uptake_half_lives else "mono-exponential"
        print(
            f"   {name:<16} BED {bed['bed_gy']:7.2f} ± {bed['bed_sigma_gy']:5.2f} Gy"
            f"   EQD2 {bed['eqd2_gy']:7.2f} Gy  ({tissue}, {shape})"
        )
    (out_dir / "bed.json").write_text(json.dumps(beds, indent=2))
    print(f"results in {out_dir}/")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("organ-dosimetry-out"))
