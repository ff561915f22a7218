from .conftest import seed_day


def test_pages_render(web):
    day = seed_day(web)
    for role in ("pharmacist", "technologist", "physicist", "physician", "admin"):
        c = web.client(role)
        for url in ("/ui/worklist", "/ui/batches", f"/ui/batches/{day.batch_id}", "/ui/dispense", "/ui/qa",
                    "/ui/cameras", f"/ui/patients/{day.pseudonym}", "/ui/dosimetry", "/ui/audit"):
            r = c.get(url)
            print(role, url, r.status_code)
            assert r.status_code in (200, 403), r.text
