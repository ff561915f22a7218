"""``theradose analyse``: dose–effect, NTCP, survival and outcome prediction on a registry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from theradose.cli._output import print_json, print_mapping

app = typer.Typer(help="Population analytics on a registry Parquet file.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON only.")]
Registry = Annotated[Path, typer.Argument(help="Registry Parquet file ('theradose registry export').")]
DoseOption = Annotated[
    str | None, typer.Option("--dose", help="<tissue|kind|region>:<column>, e.g. kidney:bed_gy.")
]
ThresholdOption = Annotated[int, typer.Option("--threshold", help="CTCAE grade that counts as an event.")]
PlotsOption = Annotated[Path | None, typer.Option("--plots", help="Folder for PNG plots and an HTML table.")]


def _show(title: str, data: dict[str, Any], json: bool) -> None:
    if json:
        print_json(data)
    else:
        print_mapping(title, data)


@app.command("dose-effect")
def dose_effect(
    registry: Registry,
    endpoint: Annotated[str, typer.Option("--endpoint", help="response, psa_response, kidney_toxicity, ...")],
    dose: DoseOption = None,
    threshold: ThresholdOption = 1,
    plots: PlotsOption = None,
    json: JsonFlag = False,
) -> None:
    """Logistic dose–effect curve with D50, slope and confidence intervals (one row per patient, dose
    summed over the patient's cycles)."""
    from theradose.population.analysis import (
        ENDPOINTS,
        dose_effect_plot,
        endpoint_table,
        fit_logistic,
        write_html_table,
    )
    from theradose.population.registry import read_registry

    table = endpoint_table(read_registry(registry), endpoint, dose=dose, threshold=threshold)
    fit = fit_logistic(table["dose"], table["outcome"])
    dose_spec = dose or ":".join(ENDPOINTS.get(endpoint, ("tumour", "dose_gy")))
    data = {"endpoint": endpoint, "dose": dose_spec, **fit.as_dict()}
    if plots is not None:
        plots.mkdir(parents=True, exist_ok=True)
        png = dose_effect_plot(
            fit, table["dose"], table["outcome"], plots / f"dose_effect_{endpoint}.png", label=dose_spec
        )
        page = write_html_table(f"Dose–effect: {endpoint}", data, plots / f"dose_effect_{endpoint}.html")
        data["plot"] = str(png)
        data["table"] = str(page)
    _show(f"dose–effect: {endpoint}", data, json)


@app.command()
def ntcp(
    registry: Registry,
    endpoint: Annotated[
        str, typer.Option("--endpoint", help="kidney_toxicity, xerostomia, toxicity.")
    ] = "kidney_toxicity",
    dose: DoseOption = None,
    threshold: ThresholdOption = 2,
    json: JsonFlag = False,
) -> None:
    """Lyman–Kutcher–Burman NTCP fit (TD50, m) on the regions' mean dose (n = 1)."""
    from theradose.population.analysis import endpoint_table, fit_lkb
    from theradose.population.registry import read_registry

    table = endpoint_table(read_registry(registry), endpoint, dose=dose, threshold=threshold)
    fit = fit_lkb([[d] for d in table["dose"]], [[1.0]] * len(table), table["outcome"], n=1.0)
    _show(f"LKB NTCP: {endpoint}", {"endpoint": endpoint, **fit.as_dict()}, json)


@app.command()
def survival(
    registry: Registry,
    dose: DoseOption = None,
    groups: Annotated[int, typer.Option("--groups", help="Number of dose groups (quantiles).")] = 2,
    plots: PlotsOption = None,
    json: JsonFlag = False,
) -> None:
    """Kaplan–Meier by dose group, log-rank test and Cox hazard ratio per Gy."""
    from theradose.errors import InputError
    from theradose.population.analysis import endpoint_table, survival_by_dose_group
    from theradose.population.registry import read_registry

    frame = read_registry(registry)
    for column in ("survival_time_months", "survival_event"):
        if column not in frame.columns:
            raise InputError(f"registry has no {column}: export with --outcomes holding survival columns")
    frame = frame.assign(_event=frame["survival_event"].astype("float64"))
    table = endpoint_table(frame, "_event", dose=dose)
    times = frame.groupby("patient_id")["survival_time_months"].first()
    table = table.join(times, on="patient_id").dropna(subset=["survival_time_months"])
    png = None
    if plots is not None:
        plots.mkdir(parents=True, exist_ok=True)
        png = plots / "survival_by_dose.png"
    result = survival_by_dose_group(
        table["survival_time_months"], table["outcome"], table["dose"], groups=groups, plot_path=png
    )
    data = result.as_dict()
    if png is not None:
        data["plot"] = str(png)
    _show("survival by dose group", data, json)


@app.command()
def predict(
    registry: Registry,
    endpoint: Annotated[str, typer.Option("--endpoint", help="response, psa_response, kidney_toxicity, ...")],
    features: Annotated[
        str,
        typer.Option("--features", help="Comma-separated <region>:<column> or study columns (age_years)."),
    ] = "tumour:dose_gy,kidney:bed_gy,age_years",
    threshold: ThresholdOption = 1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the held-out split and the folds.")] = 0,
    plots: PlotsOption = None,
    json: JsonFlag = False,
) -> None:
    """Outcome model: cross-validated AUC, then AUC and Brier score on a held-out split, calibration plot."""
    import pandas as pd

    from theradose.errors import InputError
    from theradose.population.analysis import endpoint_table, predict_outcome
    from theradose.population.registry import read_registry

    frame = read_registry(registry)
    table = endpoint_table(frame, endpoint, threshold=threshold)[["patient_id", "outcome"]]
    names = [f.strip() for f in features.split(",") if f.strip()]
    if not names:
        raise InputError("--features is empty: give e.g. tumour:dose_gy,kidney:bed_gy,age_years")
    for name in names:
        if ":" in name:
            column = endpoint_table(frame, endpoint, dose=name, threshold=threshold)[["patient_id", "dose"]]
            column = column.rename(columns={"dose": name})
        elif name in frame.columns:
            column = frame.groupby("patient_id")[name].first().astype("float64").reset_index()
        else:
            raise InputError(f"--features {name!r} is neither <region>:<column> nor a registry column")
        table = table.merge(column, on="patient_id", how="inner")
    table = table.dropna()
    png = None
    if plots is not None:
        plots.mkdir(parents=True, exist_ok=True)
        png = plots / f"calibration_{endpoint}.png"
    result = predict_outcome(pd.DataFrame(table[names]), table["outcome"], seed=seed, plot_path=png)
    data = {"endpoint": endpoint, **result.as_dict()}
    if png is not None:
        data["plot"] = str(png)
    _show(f"outcome prediction: {endpoint}", data, json)
