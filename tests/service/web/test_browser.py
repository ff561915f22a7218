"""A full clinical day in Debian's Chromium (headless, Playwright) against the app served by uvicorn on
127.0.0.1 with a temporary SQLite database, on a tablet-size viewport whose clock is in another zone.

Three patients (two 177Lu-PSMA-617, one 177Lu-DOTATATE) and four roles (physician, radiopharmacist
with a second pharmacist who releases, technologist, physicist), entirely in the pages: register the
patients, write and sign the directives, a laboratory DELAY, calibrator QA, receive batches, QC against
the specification, release by e-signature, dispense from the worklist, administer at the bedside, and
the negative paths: out-of-spec QC blocks release, the QC recorder cannot release, the wrong product is
refused, a resubmitted form creates nothing, a DELAY blocks until a signed override, an identity
mismatch stops, a 25 % deviation is recorded as a possible medical event with its reason. After each
step the database is checked; every page is checked with axe-core (the copy shipped by the PyPI package
``axe-playwright-python``; nothing is downloaded) and must have no violation; a screenshot of each step
is kept under ``tmp_path`` (copied to ``.test-artefacts/webui/`` when ``THERADOSE_ARTEFACTS`` is set).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from clock import real_clock_env

from .conftest import QP, SITE_TZ, make_settings, password_of

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TABLET = {"width": 820, "height": 1180}  # a 10.9-inch tablet in portrait, CSS pixels
BIRTH = {"A": "1951-04-02", "B": "1948-11-23", "C": "1962-07-09"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Live:
    base: str
    app: Any

    def one(self, sql: str, **params: Any) -> Any:
        with self.app.state.db.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar_one()


@pytest.fixture
def live(db_path: Path, tmp_path: Path, pipeline_root: Path) -> Iterator[Live]:
    """The app with pages served by uvicorn on 127.0.0.1 (a free port)."""
    import uvicorn

    from theradose.service.web import create_web_app

    app = create_web_app(make_settings(db_path), data_dir=tmp_path / "files", pipeline_roots=[pipeline_root])
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield Live(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.fail(
            "Chromium is not installed at /usr/bin/chromium: run scripts/setup-system.sh as root "
            "(Debian: apt-get install chromium); the browser tests need it",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # Chromium keeps the real clock (its page loads stall under libfaketime); the server under test keeps
        # the faked one. The pages' only clock-dependent script is the dispensing form's live activity,
        # which no test checks.
        instance = p.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, env=real_clock_env()
        )
        try:
            yield instance
        finally:
            instance.close()


class Shots:
    """A screenshot and an axe-core check of every step (0 violations required)."""

    def __init__(self, folder: Path) -> None:
        from axe_playwright_python.sync_playwright import Axe

        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.taken: list[Path] = []
        self.axe = Axe()
        self.violations: dict[str, list[str]] = {}
        self.checked = 0

    def __call__(self, page: Any, name: str) -> None:
        page.wait_for_load_state()
        path = self.folder / f"{len(self.taken) + 1:02d}_{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        result = self.axe.run(page)
        self.checked += 1
        found = [f"{v['id']}: {v['help']}" for v in result.response["violations"]]
        if found:
            self.violations[name] = found

    def publish(self) -> None:
        if os.environ.get("THERADOSE_ARTEFACTS"):
            target = Path(".test-artefacts") / "webui"
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True, exist_ok=True)
            for path in self.taken:
                shutil.copy2(path, target / path.name)


def _local(dt: datetime) -> str:
    return dt.astimezone(ZoneInfo(SITE_TZ)).strftime("%Y-%m-%dT%H:%M")


def _login(page: Any, base: str, user: str) -> None:
    page.goto(f"{base}/ui/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password_of(user))
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    assert "/ui/login" not in page.url, page.content()[:2000]


def _logout(page: Any) -> None:
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/ui/login")


def _sign(page: Any, button: str, user: str) -> None:
    page.get_by_role("button", name=button).first.click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_label("Your password").fill(password_of(user))
    dialog.get_by_role("button", name="Sign", exact=True).click()
    page.wait_for_load_state()


def _flash(page: Any) -> str:
    return str(page.locator(".flash").first.inner_text())


def test_full_clinical_day_in_the_browser(live: Live, browser: Any, tmp_path: Path) -> None:
    shots = Shots(tmp_path / "screenshots")
    base = live.base
    context = browser.new_context(viewport=TABLET, locale="en-GB", timezone_id="America/New_York")
    page = context.new_page()
    page.set_default_timeout(15000)
    now = datetime.now(ZoneInfo(SITE_TZ))
    mrns = {k: f"MRN-{k}{int(time.time()) % 100000}" for k in "ABC"}
    try:
        # --- physician: register three patients, write and sign their directives ----------------------
        _login(page, base, "physician")
        shots(page, "physician_worklist_empty")
        pseudonyms = {}
        for key, family, given, sex, weight in (
            ("A", "Adler", "Anton", "male", "82"),
            ("B", "Berger", "Bruno", "male", "75"),
            ("C", "Conrad", "Clara", "female", "64"),
        ):
            page.get_by_role("link", name="Patients").click()
            page.get_by_label("Family name").fill(family)
            page.get_by_label("Given name").fill(given)
            page.get_by_label("Birth date").fill(BIRTH[key])
            page.get_by_label("Record number (MRN)").fill(mrns[key])
            page.get_by_label("Sex").select_option(sex)
            page.get_by_label("Weight (kg)").fill(weight)
            page.get_by_role("button", name="Register").click()
            page.wait_for_url("**/ui/patients/PT-*")
            pseudonyms[key] = page.url.rsplit("/", 1)[1]
            product = "[177Lu]Lu-DOTA-TATE (Lutathera)" if key == "C" else "[177Lu]Lu-PSMA-617 (Pluvicto)"
            page.get_by_label("Product").select_option(label=product)
            page.get_by_label("Activity (MBq)").fill("7400")
            page.get_by_label("Planned date").fill(now.date().isoformat())
            page.get_by_role("button", name="Write directive (draft)").click()
            page.wait_for_load_state()
            assert "written as a draft" in _flash(page)
            _sign(page, "Sign directive (approve plan)", "physician")
            assert "signed as approved" in _flash(page)
        assert live.one("SELECT count(*) FROM prescriptions WHERE status = 'signed'") == 3
        assert live.one("SELECT count(*) FROM patient_identities") == 3
        shots(page, "directive_signed")
        # a duplicate directive for cycle 1 is refused
        page.goto(f"{base}/ui/patients/{pseudonyms['C']}")
        page.locator("input[type=hidden][name=cycle]").evaluate("e => e.value = '1'")
        page.get_by_label("Product").select_option(label="[177Lu]Lu-DOTA-TATE (Lutathera)")
        page.get_by_label("Activity (MBq)").fill("7400")
        page.get_by_role("button", name="Write directive (draft)").click()
        page.wait_for_load_state()
        assert "already has written directive" in _flash(page)
        assert live.one("SELECT count(*) FROM prescriptions") == 3
        shots(page, "duplicate_cycle_refused")
        # patient B: platelets 62 x 10^9/L before cycle 1 -> DELAY (PLUVICTO USPI Table 1, grade 2)
        page.goto(f"{base}/ui/patients/{pseudonyms['B']}")
        page.get_by_label("Test", exact=True).fill("platelets")
        page.get_by_label("Value", exact=True).fill("62")
        page.get_by_label("Unit", exact=True).fill("10^9/L")
        page.get_by_label("Cycle", exact=True).fill("1")
        page.get_by_role("button", name="Record value").click()
        page.wait_for_load_state()
        assert "DELAY" in page.locator("#decision-1").inner_text()
        assert live.one("SELECT decision FROM precycle_decisions") == "delay"
        shots(page, "precycle_delay")
        _logout(page)

        # --- physicist: the dose calibrator and its constancy check -------------------------------------
        _login(page, base, "physicist")
        page.get_by_role("link", name="Calibrator QA").click()
        page.get_by_text("Register a dose calibrator").click()
        page.get_by_label("Name", exact=True).fill("CRC-25R")
        page.get_by_label("Tolerance (±%)").fill("5")
        page.get_by_role("button", name="Register").click()
        page.wait_for_load_state()
        page.get_by_label("Certified activity (MBq)").fill("10")
        page.get_by_label("Certified at").fill(_local(now - timedelta(hours=1)))
        page.get_by_label("Reading (MBq)").fill("10.1")
        page.get_by_role("button", name="Record check").click()
        page.wait_for_load_state()
        assert _flash(page).startswith("PASS")
        assert live.one("SELECT count(*) FROM calibrator_qa WHERE passed") == 1
        shots(page, "calibrator_constancy_pass")
        _logout(page)

        # --- radiopharmacist: receive two batches, QC against the specification ------------------------
        _login(page, base, "pharmacist")
        batch_ids = {}
        for lot, product in (
            ("PSMA-0701", "[177Lu]Lu-PSMA-617 (Pluvicto)"),
            ("DOTA-0701", "[177Lu]Lu-DOTA-TATE (Lutathera)"),
        ):
            page.get_by_role("link", name="Batches").click()
            page.get_by_label("Product", exact=True).select_option(label=product)
            page.get_by_label("177Lu production (certificate of analysis)").select_option("no")
            page.get_by_label("Lot number").fill(lot)
            page.get_by_label("Activity at reference time (MBq)").fill("30000")
            page.get_by_label("Volume (mL)").fill("30")
            page.get_by_label("Reference time", exact=True).fill(_local(now - timedelta(hours=1)))
            page.get_by_label("Expiry", exact=True).fill(_local(now + timedelta(hours=48)))
            page.get_by_role("button", name="Receive (quarantine)").click()
            page.wait_for_url("**/ui/batches/*")
            batch_ids[lot] = int(page.url.rsplit("/", 1)[1])
            rcp = "93" if lot.startswith("PSMA") else "98.5"  # the PSMA lot first fails its purity
            for test, value in (("radiochemical_purity (%)", rcp), ("ph (pH)", "5.2")):
                page.get_by_label("Test", exact=True).select_option(label=test)
                page.get_by_label("Value", exact=True).fill(value)
                page.get_by_role("button", name="Record QC").click()
                page.wait_for_load_state()
        assert live.one("SELECT count(*) FROM qc_results WHERE NOT passed") == 1
        page.goto(f"{base}/ui/batches/{batch_ids['PSMA-0701']}")
        shots(page, "qc_out_of_specification")
        # the QC recorder cannot release (four-eyes)
        page.locator("#f-release_password").fill(password_of("pharmacist"))
        page.get_by_role("button", name="Release batch").click()
        page.wait_for_load_state()
        assert "second person" in page.locator("#e-release").inner_text()
        assert live.one("SELECT count(*) FROM batches WHERE status = 'released'") == 0
        shots(page, "qc_recorder_cannot_release")
        page.get_by_label("Test", exact=True).select_option(label="radiochemical_purity (%)")
        page.get_by_label("Value", exact=True).fill("98.4")
        page.get_by_label("Reason (required to repeat a test)").fill(
            "TLC strip re-run: first strip mis-spotted"
        )
        page.get_by_role("button", name="Record QC").click()
        page.wait_for_load_state()
        _logout(page)

        # --- second pharmacist (qualified person): release by e-signature -------------------------------
        _login(page, base, QP)
        page.goto(f"{base}/ui/batches/{batch_ids['DOTA-0701']}")
        page.locator("#f-release_password").fill(password_of(QP))
        page.get_by_role("button", name="Release batch").click()
        page.wait_for_load_state()
        assert "released" in page.locator("h1").inner_text()
        page.goto(f"{base}/ui/batches/{batch_ids['PSMA-0701']}")
        page.locator("#f-release_password").fill(password_of(QP))
        page.get_by_role("button", name="Release batch").click()
        page.wait_for_load_state()
        assert live.one("SELECT count(*) FROM batches WHERE status = 'released'") == 2
        assert live.one("SELECT count(*) FROM signatures WHERE meaning = 'released' AND signer = 'qp'") == 2
        shots(page, "batch_released_by_second_pharmacist")
        _logout(page)

        # --- radiopharmacist: dispense from the worklist --------------------------------------------------
        _login(page, base, "pharmacist")
        page.get_by_role("link", name="Worklist").click()
        row_b = page.get_by_role("row").filter(has_text="BERGER")
        assert "DELAY" in row_b.inner_text() and row_b.get_by_role("link", name="Dispense").count() == 0
        shots(page, "worklist_delay_blocks")
        clicks = 0
        page.get_by_role("row").filter(has_text="ADLER").get_by_role("link", name="Dispense").click()
        clicks += 1
        page.wait_for_url("**/ui/dispense?prescription=*")
        assert page.get_by_label("Released batch (of the directive's product)").input_value() == str(
            batch_ids["PSMA-0701"]
        )  # the only batch of the directive's product is pre-selected, and the only calibrator
        assert page.get_by_label("Dose calibrator for the assay").input_value() != ""
        page.wait_for_function(
            "document.querySelector('.live:not([hidden]) .live-volume').textContent !== '–'"
        )
        shots(page, "dispense_preselected")
        form = page.evaluate("Object.fromEntries(new FormData(document.getElementById('dispense-form')))")
        page.get_by_role("button", name="Dispense", exact=True).click()
        clicks += 1
        page.wait_for_url("**/ui/worklist")
        assert clicks <= 4 and "dispensed D1" in _flash(page)
        assert live.one("SELECT count(*) FROM dispensings") == 1
        shots(page, "worklist_dispensed")
        # the back button and resubmit: the same form posted again writes nothing
        again = page.request.post(f"{base}/ui/dispense", form=form)
        assert again.ok and "this form was sent before" in again.text()
        assert live.one("SELECT count(*) FROM dispensings") == 1
        # reopening Dispense: the directive is no longer offered
        page.goto(f"{base}/ui/dispense")
        options = page.get_by_label("Written directive (signed)").inner_text()
        assert "ADLER" not in options and "CONRAD" in options
        # the wrong product: a PSMA batch for the DOTATATE directive is refused
        page.get_by_role("link", name="Worklist").click()
        page.get_by_role("row").filter(has_text="CONRAD").get_by_role("link", name="Dispense").click()
        assert page.get_by_label("Released batch (of the directive's product)").input_value() == str(
            batch_ids["DOTA-0701"]
        )
        page.get_by_label("Released batch (of the directive's product)").select_option(
            str(batch_ids["PSMA-0701"])
        )
        page.get_by_role("button", name="Dispense", exact=True).click()
        page.wait_for_load_state()
        assert "only the nuclide matches" in page.locator("#e-batch_id").inner_text()
        assert live.one("SELECT count(*) FROM dispensings") == 1
        shots(page, "wrong_product_refused")
        page.get_by_label("Released batch (of the directive's product)").select_option(
            str(batch_ids["DOTA-0701"])
        )
        planned_c = page.evaluate("document.querySelector('[name=planned_time]').value")
        page.get_by_role("button", name="Dispense", exact=True).click()
        page.wait_for_url("**/ui/worklist")
        assert live.one("SELECT count(*) FROM dispensings") == 2
        label = page.request.get(f"{base}/ui/dispensings/1/label")
        assert label.ok and label.body().startswith(b"%PDF")
        _logout(page)

        # --- technologist: bedside ---------------------------------------------------------------------
        # the worklist of the day the dose is planned for: the form proposes one hour from now, which late
        # in the evening is tomorrow (site time), so the technologist picks that day
        _login(page, base, "technologist")
        page.goto(f"{base}/ui/worklist?day={form['planned_time'][:10]}")
        page.get_by_role("row").filter(has_text="ADLER").get_by_role("link", name="Administer").click()
        assert mrns["A"] in page.locator(".identity").inner_text()
        shots(page, "bedside_identity")
        page.get_by_label("Record number (MRN)").fill(mrns["B"])  # the neighbour's wristband
        page.get_by_label("Birth date (YYYY-MM-DD)").fill(BIRTH["A"])
        page.get_by_label("Syringe activity (MBq)").fill("9250")
        page.get_by_role("button", name="Check syringe against the directive").click()
        page.wait_for_load_state()
        assert "OUTSIDE ±20 %" in page.locator("#assay").inner_text()  # shown before the injection
        shots(page, "assay_before_injection")
        page.get_by_label("No residual measured").check()
        page.get_by_role("button", name="Record administration").click()
        page.wait_for_load_state()
        assert "STOP" in page.locator("#e-confirm_mrn").inner_text()
        assert live.one("SELECT count(*) FROM administrations") == 0
        shots(page, "identity_mismatch_stops")
        page.get_by_label("Record number (MRN)").fill(mrns["A"])
        page.get_by_role("button", name="Record administration").click()
        page.wait_for_load_state()
        assert "+25.0%" in page.locator("#e-deviation_reason").inner_text()
        assert live.one("SELECT count(*) FROM administrations") == 0
        page.get_by_label(re.compile("Reason for a deviation")).fill(
            "Authorized user informed; dose calibrator re-checked"
        )
        page.get_by_role("button", name="Record administration").click()
        page.wait_for_load_state()
        assert "POSSIBLE MEDICAL EVENT" in _flash(page)
        assert live.one("SELECT medical_event_possible FROM administrations") in (1, True)
        assert live.one("SELECT residual_activity_mbq FROM administrations") is None
        shots(page, "deviation_recorded_as_possible_medical_event")
        _sign(page, "Sign as administered", "technologist")
        page.goto(f"{base}/ui/worklist?day={planned_c[:10]}")
        page.get_by_role("row").filter(has_text="CONRAD").get_by_role("link", name="Administer").click()
        page.get_by_label("Record number (MRN)").fill(mrns["C"])
        page.get_by_label("Birth date (YYYY-MM-DD)").fill(BIRTH["C"])
        page.get_by_label("Syringe activity (MBq)").fill("7420")
        page.get_by_role("button", name="Check syringe against the directive").click()
        page.wait_for_load_state()
        assert "within ±20 %" in page.locator("#assay").inner_text()
        page.get_by_label("Residual activity (MBq)").fill("35")
        page.get_by_role("button", name="Record administration").click()
        page.wait_for_load_state()
        assert "sign it as administered" in _flash(page)
        assert live.one("SELECT count(*) FROM administrations") == 2
        shots(page, "administration_within_limits")
        _logout(page)

        # --- physician: override the DELAY with a reason and an e-signature ----------------------------
        _login(page, base, "physician")
        page.goto(f"{base}/ui/patients/{pseudonyms['B']}")
        page.get_by_label("Override reason").fill("Haematology: stable count, proceed at full activity")
        page.get_by_label("Your password (e-signature)").fill(password_of("physician"))
        page.get_by_role("button", name="Override and sign").click()
        page.wait_for_load_state()
        assert "overridden" in _flash(page)
        assert live.one("SELECT overridden_by FROM precycle_decisions") == "physician"
        shots(page, "delay_overridden")
        page.get_by_role("link", name="Worklist").click()
        shots(page, "worklist_end_of_day")
        _logout(page)
        _login(page, base, "pharmacist")
        page.get_by_role("row").filter(has_text="BERGER").get_by_role("link", name="Dispense").click()
        page.get_by_role("button", name="Dispense", exact=True).click()
        page.wait_for_url("**/ui/worklist")
        assert live.one("SELECT count(*) FROM dispensings") == 3
        page.get_by_role("link", name="Waste").click()
        shots(page, "waste")
        _logout(page)
        _login(page, base, "physicist")
        page.get_by_role("link", name="Audit log").click()
        page.get_by_role("button", name="Verify chain").click()
        page.wait_for_load_state()
        assert "Chain intact" in page.locator("#verify-result").inner_text()
        shots(page, "audit_verified")
    finally:
        context.close()
        shots.publish()
    assert shots.violations == {}, shots.violations
    assert len(shots.taken) >= 20 and shots.checked == len(shots.taken)


def test_next_cycle_directive_drafted_from_the_plan_in_the_browser(
    live: Live, browser: Any, tmp_path: Path
) -> None:
    """Cycle 1 given and its (fabricated) dosimetry approved through the JSON API; in the pages the
    physician drafts cycle 2's directive from the plan, sees it as a draft with the plan it came from,
    changes its activity with a reason, and signs it."""
    import io
    import zipfile

    from fastapi.testclient import TestClient

    from .conftest import ROLES, Web, administer_day, seed_day, write_pipeline_output

    client = TestClient(live.app)
    tokens = {}
    for role in (*ROLES, QP):
        r = client.post("/auth/login", json={"username": role, "password": password_of(role)})
        assert r.status_code == 200, r.text
        tokens[role] = {"Authorization": f"Bearer {r.json()['token']}"}
    web = Web(live.app, {}, tokens)
    day = seed_day(web)
    folder = write_pipeline_output(tmp_path / "run1", patient=day.pseudonym, record=administer_day(web, day))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.writestr("out/" + path.name, path.read_bytes())
    r = client.post(
        "/dosimetry/reviews",
        data={"patient": day.pseudonym},
        files={"file": ("out.zip", buffer.getvalue(), "application/zip")},
        headers=tokens["physicist"],
    )
    assert r.status_code == 201, r.text
    review_id = r.json()["review_id"]
    web.api(
        "POST",
        f"/dosimetry/reviews/{review_id}/signatures",
        "physician",
        {"meaning": "approved", "password": password_of("physician")},
    )

    shots = Shots(tmp_path / "screenshots")
    context = browser.new_context(viewport=TABLET, locale="en-GB", timezone_id="America/New_York")
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        _login(page, live.base, "physician")
        page.goto(f"{live.base}/ui/patients/{day.pseudonym}")
        shots(page, "plan_before_draft")
        page.get_by_role("button", name="Draft the cycle 2 directive from this plan").click()
        page.wait_for_load_state()
        assert _flash(page).startswith("draft directive written from the plan: cycle 2: ")
        rx_id = live.one("SELECT prescription_id FROM directive_plans")
        assert live.one("SELECT status FROM prescriptions WHERE id = :i", i=rx_id) == "draft"
        assert "Drafted from the next-cycle plan by physician" in page.locator(f"#plan-{rx_id}").inner_text()
        assert page.get_by_role("button", name="Draft the cycle 2 directive from this plan").count() == 0
        shots(page, "plan_and_drafted_directive")
        page.locator(f"#e-a-{rx_id}").locator("xpath=ancestor::details").locator("summary").click()
        page.get_by_label("Change activity to (MBq)").fill("7000")
        page.get_by_label("Reason for the change").fill("renal function borderline: rounded down")
        page.get_by_role("button", name="Change directive").click()
        page.wait_for_load_state()
        assert _flash(page) == f"directive {rx_id} changed: sign it to release it for dispensing"
        assert "edited to 7,000.0 MBq" in page.locator(f"#plan-{rx_id}").inner_text()
        shots(page, "drafted_directive_edited")
        _sign(page, "Sign directive (approve plan)", "physician")
        assert "signed as approved" in _flash(page)
        signed = "SELECT status, prescribed_activity_mbq FROM prescriptions WHERE id = :i"
        with live.app.state.db.engine.connect() as conn:
            assert tuple(conn.execute(text(signed), {"i": rx_id}).one()) == ("signed", 7000.0)
        shots(page, "drafted_directive_signed")
    finally:
        context.close()
    assert shots.violations == {}, shots.violations
    assert shots.checked == len(shots.taken) == 4
