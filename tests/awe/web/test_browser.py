"""The web pages in a real browser: headless Chromium (Debian's ``chromium``, driven
by Playwright for Python) against a real ``awe web`` on each backend's test site.

A person logs in, queries the plan of a selection and sees every node's state,
processes one node and follows the job to its product and preview; a calibrator
invalidates a master flat and sees what used it turn outdated, then makes it valid
again; a member of another project sees none of the first project's products.

The pages are photographed as they go (``page.screenshot``): into
``<pytest's base temporary directory>/screenshots/<backend>/``, named in the
summary at the end of the run, and copied to ``$AWE_SCREENSHOTS/<backend>/`` when
that variable names a directory.

Playwright drives the system's Chromium (``/usr/bin/chromium``), never a browser of
its own (``playwright install`` is not needed), and every request of the pages to
anywhere but the test server on loopback is refused and fails the test. Without
Chromium the tests fail when the ``CI`` variable is set, and are skipped otherwise.
"""

import contextlib
import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.awe.web.conftest import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]

SECOND = 1000  # Playwright's timeouts are in milliseconds
JOB_TIMEOUT = 180 * SECOND
"""How long a job making one calibrated exposure may take to be done."""

COPIES = Path(os.environ["AWE_SCREENSHOTS"]).resolve() if os.environ.get("AWE_SCREENSHOTS") \
    else None
"""Where screenshots are copied to, read at import: the tests' session keeps every
AWE_* variable of the caller's out of their environment."""


# -- the browser -------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    """Headless Chromium, the system's, for the module."""
    if not CHROMIUM.exists():
        reason = (f"no Chromium at {CHROMIUM}: the browser tests need Debian's chromium "
                  "package (apt-get install chromium; .ci/run installs it)")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Pages:
    """A browser context on the test server: its page, where screenshots go, and what
    went wrong in the browser (requests off loopback, uncaught script errors)."""

    def __init__(self, context, server, shots, log):
        self.context, self.server, self.shots, self.log = context, server, shots, log
        self.page = context.new_page()
        self.refused, self.script_errors = [], []
        self.page.on("pageerror", lambda err: self.script_errors.append(str(err)))

    def shoot(self, name):
        """A full-page screenshot ``NAME.png`` of what the page shows now."""
        path = self.shots.directory / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.copy(path)

    def log_in(self, user, password=PASSWORD):
        """Log in through the form; the page ends at the site's index."""
        page = self.page
        page.goto("/login")
        page.fill("#login input[name=username]", user)
        page.fill("#login input[name=password]", password)
        page.click("#login button")

    def log_out(self):
        self.page.click("#context form[action='/logout'] button")
        self.page.wait_for_url(re.compile(r"/$"))

    def query(self, target, *, night, chip="", filter=""):
        """Fill the target-processing form and press Query."""
        page = self.page
        page.goto("/process")
        page.select_option("#target", target)
        if chip:
            page.select_option("#process-form select[name=chip]", chip)
        if filter:
            page.select_option("#process-form select[name=filter]", filter)
        page.fill("#process-form input[name=first_night]", night)
        page.fill("#process-form input[name=last_night]", night)
        page.click("#query")
        page.wait_for_load_state()

    def set_validity(self, object_id, value, comment):
        """On the object's page, set its validity to ``value``; the page ends at the
        confirmation, which is returned unconfirmed."""
        page = self.page
        page.goto(f"/objects/{object_id}")
        form = page.locator("form#validity")
        form.locator("select[name=is_valid]").select_option(str(value))
        form.locator("textarea[name=comment]").fill(comment)
        form.locator("button, input[type=submit]").first.click()
        page.wait_for_load_state()

    def confirm(self, object_id):
        self.page.click("#confirm")
        self.page.wait_for_url(re.compile(rf"/objects/{object_id}(\?.*)?$"))


class Screenshots:
    """Where a backend's screenshots go."""

    def __init__(self, base, backend):
        self.directory = base / backend
        self.directory.mkdir(parents=True, exist_ok=True)
        self.copies = COPIES / backend if COPIES is not None else None

    def copy(self, path):
        if self.copies is not None:
            self.copies.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, self.copies / path.name)


class _Reporting:
    """A pytest plugin for the run: a failed test's report gets a screenshot of its
    page and the end of the server's log; the summary says where screenshots are."""

    def __init__(self, base):
        self.base = base

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = (yield).get_result()
        pages = getattr(item, "funcargs", {}).get("pages")
        if call.when != "call" or not report.failed or not isinstance(pages, Pages):
            return
        name = f"failed-{item.name}".replace("[", "-").replace("]", "")
        with contextlib.suppress(Exception):
            pages.shoot(name)
            report.sections.append(("browser", f"the page was {pages.page.url}, "
                                               f"photographed as {name}.png"))
        text = pages.log.read_text()[-6000:] if pages.log.exists() else "(none)"
        report.sections.append((f"awe web log {pages.log} (its end)", text))

    def pytest_terminal_summary(self, terminalreporter):
        places = [str(self.base)] + ([str(COPIES)] if COPIES is not None else [])
        terminalreporter.write_line(f"screenshots of the web pages: {' and '.join(places)}")


@pytest.fixture(scope="session")
def screenshots_base(request, tmp_path_factory):
    """The directory of every screenshot of the run (see `_Reporting`)."""
    base = tmp_path_factory.getbasetemp() / "screenshots"
    base.mkdir(exist_ok=True)
    request.config.pluginmanager.register(_Reporting(base), "awe-browser-tests")
    return base


@pytest.fixture
def pages(browser, web_server, screenshots_base, tmp_path):
    """A fresh browser context (no cookies) on `web_server` (whose log is
    ``tmp_path / "web.log"``); it may ask nothing of any other server."""
    context = browser.new_context(base_url=web_server.url,
                                  viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30 * SECOND)
    pages = Pages(context, web_server, Screenshots(screenshots_base, web_server.site.backend),
                  tmp_path / "web.log")
    server_host = urlsplit(web_server.url).netloc

    def only_loopback(route):
        if urlsplit(route.request.url).netloc == server_host:
            route.continue_()
        else:
            pages.refused.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    yield pages
    context.close()
    assert not pages.refused, f"the pages asked for things off the server: {pages.refused}"
    assert not pages.script_errors, f"the pages' scripts failed: {pages.script_errors}"


def state_counts(page):
    """How many distinct nodes (class and selectors) the drawn plan has per state."""
    return page.evaluate("""() => {
        const seen = {};
        for (const node of document.querySelectorAll("#plan details.node")) {
            const summary = node.querySelector(":scope > summary");
            const key = summary.querySelector(".cls").textContent + "(" +
                        summary.querySelector(".sel").textContent + ")";
            (seen[node.dataset.state] ||= new Set()).add(key);
        }
        return Object.fromEntries(Object.entries(seen).map(([k, v]) => [k, v.size]));
    }""")


# -- the tests -----------------------------------------------------------------------

def test_log_in_query_the_plan_process_and_follow_the_job(site, pages):
    """alice logs in, sees the plan of her night's g exposures on every chip (what she
    reduced up to date, the rest to be built), ticks one to be built, processes it,
    follows the job to done and opens its product with its preview."""
    page, facts = pages.page, site.facts

    # A wrong password is refused on the form; the right one logs in.
    page.goto("/login")
    expect(page.locator("#login")).to_be_visible()
    pages.shoot("01-login")
    pages.log_in("alice", "not her password")
    expect(page.locator("#error")).to_contain_text("wrong user name or password")
    pages.log_in("alice")
    page.wait_for_url(re.compile(r"/$"))
    expect(page.locator("#context .who")).to_have_text("alice")
    expect(page.locator("#context select[name=project]")).to_have_value("KIDS")

    # The plan: counts per state at the top, every node with its state.
    pages.query("CalibratedExposure", night=facts["night"], filter=facts["filter"])
    counts = page.locator("#counts")
    expect(counts).to_be_visible()
    roots = page.locator("#plan .tree > details.node")
    reduced = roots.filter(has=page.locator(
        ":scope > summary .sel", has_text=re.compile(rf"^raw=RawScienceFrame {facts['frame']}$")))
    expect(reduced).to_have_count(1)
    expect(reduced).to_have_attribute("data-state", "up to date")
    expect(reduced.locator(":scope > summary .badge")).to_have_text("up to date")
    expect(reduced.locator(":scope > details.node[data-state='up to date']").first).to_be_visible()
    to_build = page.locator("#plan .tree > details.node[data-state='to be built']")
    expect(to_build.first).to_be_visible()
    expect(to_build.first.locator(":scope > summary .badge")).to_have_text("to be built")
    drawn = state_counts(page)
    for state in ("up to date", "outdated", "to be built", "missing input", "not checked"):
        expect(counts.locator(f"[data-state='{state}'] b")).to_have_text(
            str(drawn.get(state, 0)))
    assert drawn["to be built"] >= 1 and drawn["up to date"] >= 1, drawn
    pages.shoot("02-process-plan")

    # Tick one exposure to be built and process it: the job is followed live.
    ticked = to_build.first
    label = ticked.locator(":scope > summary .sel").inner_text()
    ticked.locator(":scope > summary input[type=checkbox]").check()
    page.click("#process-ticked")
    page.wait_for_url(re.compile(r"/jobs\?submitted=\d+$"))
    job = int(page.url.rsplit("=", 1)[1])
    row = page.locator(f"#jobs tr[data-job='{job}']")
    expect(row).to_be_visible()
    expect(row.locator("td.state")).to_have_text("done", timeout=JOB_TIMEOUT)
    expect(row.locator(".count")).to_have_text("1/1")
    pages.shoot("03-jobs")

    row.locator(f"a[href='/jobs/{job}']").click()
    expect(page.locator("#job-state")).to_have_text("done")
    expect(page.locator("pre.log")).to_contain_text(f"made CalibratedExposure({label})")
    products = page.locator("#products a")
    expect(products).to_have_count(1)
    pages.shoot("04-job")

    # The product's page, with its preview loaded.
    expect(products.first).to_have_text(re.compile(r"^CalibratedExposure \d+$"))
    product = int(products.first.get_attribute("href").rsplit("/", 1)[1])
    products.first.click()
    page.wait_for_url(re.compile(rf"/objects/{product}$"))
    expect(page.locator("h1")).to_contain_text("CalibratedExposure")
    expect(page.locator("h1")).to_contain_text(str(product))
    preview = page.locator("img#preview")
    expect(preview).to_have_attribute("src", f"/objects/{product}/preview.png")
    page.wait_for_function(
        "() => { const img = document.getElementById('preview');"
        " return img && img.complete && img.naturalWidth > 0; }", timeout=60 * SECOND)
    expect(page.locator("section#lineage")).to_be_visible()
    pages.shoot("05-product-preview")

    # Asked again, the plan has it up to date.
    pages.query("CalibratedExposure", night=facts["night"], filter=facts["filter"])
    made = page.locator("#plan .tree > details.node").filter(
        has=page.locator(":scope > summary .sel", has_text=re.compile(rf"^{re.escape(label)}$")))
    expect(made).to_have_attribute("data-state", "up to date")
    expect(made.locator(f":scope > summary a[href='/objects/{product}']")).to_be_visible()


def test_calibrator_invalidates_a_master_flat_and_what_used_it_is_outdated(
        site, pages):
    """alice, calibrator of KIDS, sets the night's master flat invalid with a comment,
    sees the impact and confirms; the exposures that used it are outdated, saying
    why; she sets it valid again and they are up to date again."""
    page, facts = pages.page, site.facts
    flat, chip, filter_ = facts["flat"], facts["flat_chip"], facts["flat_filter"]
    pages.log_in("alice")
    page.wait_for_url(re.compile(r"/$"))

    restored = False
    try:
        page.goto(f"/objects/{flat}")
        expect(page.locator("h1")).to_contain_text("MasterFlat")
        expect(page.locator("h1")).to_contain_text(str(flat))
        pages.set_validity(flat, 0, "browser test: stripes across the flat")
        impact = page.locator("ul#impact")
        expect(impact).to_be_visible()
        expect(impact.locator("li").first).to_be_visible()
        expect(impact).to_contain_text("CalibratedExposure")
        expect(page.locator("#confirm")).to_be_visible()
        pages.shoot("06-validity-confirmation")
        pages.confirm(flat)
        expect(page.locator("h1")).to_contain_text(str(flat))

        # The exposures that used the flat are outdated, and say it is because of it.
        pages.query("CalibratedExposure", night=facts["night"], chip=chip, filter=filter_)
        roots = page.locator("#plan .tree > details.node")
        expect(roots.first).to_be_visible()
        expect(roots.and_(page.locator("[data-state='outdated']"))).to_have_count(
            roots.count())
        exposure = roots.first
        expect(exposure.locator(":scope > summary .badge")).to_have_text("outdated")
        # targets/plan.py: the flat now to be made (no other valid one), or another
        # one superseding the invalidated flat.
        expect(exposure.locator(":scope > ul.reasons > li").filter(has_text=re.compile(
            rf"^flat: (MasterFlat\(chip={chip}, .*filter={filter_}\) is to be made "
            rf"\(MasterFlat {flat}, which it used, was invalidated\)"
            rf"|.* now supersedes {flat} \(MasterFlat {flat} was invalidated\))$"))
        ).to_have_count(1)
        flat_node = exposure.locator(":scope > details.node").filter(
            has=page.locator(":scope > summary .role", has_text=re.compile("^flat:$")))
        expect(flat_node).not_to_have_attribute("data-state", "up to date")
        expect(page.locator(f"#plan a[href='/objects/{flat}']")).to_have_count(0)
        expect(page.locator("#counts [data-state='outdated'] b")).not_to_have_text("0")
        pages.shoot("07-outdated-plan")

        # Valid again: the plan is up to date again.
        pages.set_validity(flat, 1, "browser test: the stripes were the dome lamp; fine")
        expect(page.locator("ul#impact")).to_be_attached()  # nothing outdated by it
        pages.confirm(flat)
        restored = True
        pages.query("CalibratedExposure", night=facts["night"], chip=chip, filter=filter_)
        expect(roots.first).to_be_visible()
        expect(roots.and_(page.locator("[data-state='up to date']"))).to_have_count(
            roots.count())
        for state in ("outdated", "to be built", "missing input"):
            expect(page.locator(f"#counts [data-state='{state}'] b")).to_have_text("0")
        expect(page.locator(f"#plan a[href='/objects/{flat}']").first).to_be_visible()
    finally:
        if not restored:  # the site is shared: leave the flat as it was found
            site.awe("-c", f"context.set_valid(MasterFlat.load({flat}), 1, "
                           "comment='browser test: restored')", user="alice")


def test_another_projects_member_sees_none_of_its_products(site, pages):
    """bob (VIKING) logs in after alice logged out: alice's KIDS products are not
    found, the index lists none of them, and a plan of the night finds nothing."""
    page, facts = pages.page, site.facts
    pages.log_in("alice")
    page.wait_for_url(re.compile(r"/$"))
    pages.log_out()
    expect(page.locator("#context .who")).to_contain_text("not logged in")
    pages.log_in("bob")
    page.wait_for_url(re.compile(r"/$"))
    expect(page.locator("#context .who")).to_have_text("bob")
    expect(page.locator("#context select[name=project]")).to_have_value("VIKING")

    main = page.locator("main")
    for name in ("alice", "KIDS"):
        expect(main).not_to_contain_text(name)
    kids = [facts[k] for k in ("flat", "exposure", "sourcelist", "frame")] + facts["objects"][:3]
    for object_id in kids:
        expect(page.locator(f"main a[href='/objects/{object_id}']")).to_have_count(0)

    for object_id in kids:
        response = page.goto(f"/objects/{object_id}")
        assert response.status == 404, (object_id, response.status)
        expect(page.locator("#error")).to_be_visible()
        expect(page.locator("form#validity")).to_have_count(0)
        expect(page.locator("#preview")).to_have_count(0)
    pages.shoot("08-other-project-404")

    pages.query("CalibratedExposure", night=facts["night"])
    expect(page.locator("#error")).to_contain_text("no raw data matches")
    expect(page.locator("#plan")).to_have_count(0)
    pages.shoot("09-other-project-plan")
