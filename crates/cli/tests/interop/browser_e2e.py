"""End-to-end: a clinician works in a real headless Chromium, driven over W3C WebDriver
(Debian's chromedriver), against a running `phivault serve`.

A tiny WebDriver client on the standard library (no Selenium: nothing to download), pyotp
for the second factor, axe-core (npm) injected into every page for WCAG 2.2 AA checks.
Prints one line per step and `OK` at the end; exits non-zero on the first failure.

Environment: PV_BASE, PV_USER, PV_PASSWORD (temporary), PV_DAFFY (a patient on the
user's care team), PV_PORKY (one who is not), PV_PHI (JSON list of every identifying
string in the test data), PV_AXE (axe.min.js), PV_SHOTS (directory for screenshots),
PV_CHROMEDRIVER, PV_CHROMIUM.
"""

import base64
import secrets
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pyotp

BASE = os.environ["PV_BASE"]
PHI = [s for s in json.loads(os.environ["PV_PHI"]) if len(s) >= 4]
SHOTS = os.environ["PV_SHOTS"]
VISITED = []


def fail(message):
    print("FAIL:", message)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


ELEMENT_KEY = []


def element_id(reference):
    """The id in a W3C web element reference (its one key is the spec's element
    identifier, kept to pass elements back as script arguments)."""
    key, value = next(iter(reference.items()))
    if not ELEMENT_KEY:
        ELEMENT_KEY.append(key)
    return value


class WebDriver:
    def __init__(self, port):
        self.root = f"http://127.0.0.1:{port}"
        self.session = None

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.root + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read() or b"{}").get("value")
        except urllib.error.HTTPError as e:
            fail(f"WebDriver {method} {path}: {e.code} {e.read()[:500]!r}")

    def s(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def start(self, chromium, profile):
        caps = {
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "acceptInsecureCerts": True,
                    "goog:chromeOptions": {
                        "binary": chromium,
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--window-size=1280,1024",
                            f"--user-data-dir={profile}",
                        ],
                    },
                }
            }
        }
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def go(self, url):
        self.s("POST", "/url", {"url": url})
        self.note_url()

    def url(self):
        return self.s("GET", "/url")

    def note_url(self):
        VISITED.append(self.url())

    def source(self):
        return self.s("GET", "/source")

    def find(self, css):
        return element_id(self.s("POST", "/element", {"using": "css selector", "value": css}))

    def finds(self, css):
        return [element_id(e) for e in self.s("POST", "/elements", {"using": "css selector", "value": css})]

    def type(self, css, text):
        element = self.find(css)
        self.s("POST", f"/element/{element}/clear", {})
        self.s("POST", f"/element/{element}/value", {"text": text})

    def keys(self, css, text):
        """Key presses sent to an element (no clearing first: buttons take keys too)."""
        self.s("POST", f"/element/{self.find(css)}/value", {"text": text})

    def click(self, css):
        """Clicks, and when the click loads a new page (a link, a form's button), waits for
        it: the old document is marked first, and the new one is ready when it lacks the
        mark."""
        element = self.find(css)
        navigates = self.run(
            "const e = arguments[0]; window.__pvOld = true;"
            "return e.tagName === 'A' || (e.tagName === 'BUTTON' && !!e.form);",
            {ELEMENT_KEY[0]: element},
        )
        self.s("POST", f"/element/{element}/click", {})
        if navigates:
            for _ in range(200):
                if self.run("return window.__pvOld !== true && document.readyState === 'complete';"):
                    break
                time.sleep(0.05)
            else:
                fail(f"no new page after clicking {css}")
        self.note_url()

    def run(self, script, *args):
        return self.s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def run_async(self, script, *args):
        return self.s("POST", "/execute/async", {"script": script, "args": list(args)})

    def text(self):
        return self.run("return document.body.innerText;")

    def screenshot(self, name):
        png = base64.b64decode(self.s("GET", "/screenshot"))
        with open(os.path.join(SHOTS, f"{name}.png"), "wb") as f:
            f.write(png)

    def quit(self):
        if self.session:
            self.call("DELETE", f"/session/{self.session}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


AXE = open(os.environ["PV_AXE"], encoding="utf-8").read()


def accessible(driver, name):
    """axe-core on the page as it is: no serious or critical WCAG 2.x A/AA violation."""
    if not driver.run("return typeof window.axe !== 'undefined';"):
        driver.run(AXE + "\nreturn true;")
    result = driver.run_async(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}})"
        ".then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))))"
        ".catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));"
    )
    bad = [v for v in result if v["impact"] in ("serious", "critical")]
    check(not bad, f"{name}: accessibility violations {json.dumps(bad)}")
    driver.screenshot(name)
    print(f"page ok: {name} ({len(result)} minor findings)")


def sign_in(driver, user, password, start="/patients", shots=True):
    """First sign-in: temporary password, a new password, TOTP enrolment. Returns the new
    password and the recovery codes."""
    driver.go(f"{BASE}{start}")
    check(f"/login?next={urllib.parse.quote(start, safe='')}" in driver.url(), f"signed-out visit goes to sign-in: {driver.url()}")
    if shots:
        accessible(driver, "01-sign-in")
    driver.type("#username", user)
    driver.type("#password", password)
    driver.click("button[type=submit]")
    check(driver.url().startswith(f"{BASE}/login/password"), f"first sign-in asks for a new password: {driver.url()}")
    if shots:
        accessible(driver, "02-new-password")
    # Not derived from the username (the password rules refuse that).
    new_password = "a long new password " + secrets.token_hex(6)
    driver.type("#current", password)
    driver.type("#new", new_password)
    driver.type("#repeat", new_password)
    driver.click("button[type=submit]")
    check(driver.url().startswith(f"{BASE}/login/enrol"), f"then enrolment: {driver.url()}")
    if shots:
        accessible(driver, "03-enrol")
    secret = driver.run("return document.querySelector('code').textContent;")
    totp = pyotp.TOTP(secret)
    driver.type("#code", totp.now())
    driver.click("button[type=submit]")
    check("Recovery codes" in driver.text(), "recovery codes are shown once")
    codes = driver.run("return [...document.querySelectorAll('ol.codes li')].map(li => li.textContent);")
    check(len(codes) == 10, f"ten recovery codes: {codes}")
    if shots:
        accessible(driver, "04-recovery-codes")
    driver.click("main a")
    check(driver.url() == f"{BASE}{start}", f"and back where the visit began: {driver.url()}")
    return new_password, codes


def sign_in_again(driver, user, password, code, start):
    """A returning user: password, then a recovery code (a TOTP code may not be reused
    within its 30 seconds)."""
    driver.go(f"{BASE}{start}")
    driver.type("#username", user)
    driver.type("#password", password)
    driver.click("button[type=submit]")
    check(driver.url().startswith(f"{BASE}/login/mfa"), f"the second factor is asked: {driver.url()}")
    driver.type("#code", code)
    driver.click("button[type=submit]")
    check(driver.url() == f"{BASE}{start}", f"signed in again at {start}: {driver.url()}")


def sign_out(driver):
    driver.click("header form.signout button")
    check(driver.url().startswith(f"{BASE}/login"), f"signed out to the sign-in page: {driver.url()} {driver.text()[:200]}")
    for value in PHI:
        check(value not in driver.source(), "no identifying value left in the page")


def main():
    profile = tempfile.mkdtemp(prefix="pv-chromium-")
    port = free_port()
    chromedriver = subprocess.Popen(
        [os.environ.get("PV_CHROMEDRIVER", "/usr/bin/chromedriver"), f"--port={port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    driver = WebDriver(port)
    try:
        for _ in range(100):
            try:
                if driver.call("GET", "/status").get("ready"):
                    break
            except Exception:  # not listening yet
                pass
            time.sleep(0.1)
        driver.start(os.environ.get("PV_CHROMIUM", "/usr/bin/chromium"), profile)
        daffy, porky = os.environ["PV_DAFFY"], os.environ["PV_PORKY"]

        physician_password, physician_codes = sign_in(driver, os.environ["PV_USER"], os.environ["PV_PASSWORD"])
        accessible(driver, "05-my-patients")
        check(f"/chart/{daffy}" in driver.source(), "the care-team patient is listed")
        check(f"/chart/{porky}" not in driver.source(), "a patient outside the team is not")

        # Find by name: the results are the POST's answer, at an address without the name.
        driver.type("#name", "Duck")
        driver.click("form[action='/patients/search'] button")
        check(driver.url() == f"{BASE}/patients/search", f"search results at a fixed address: {driver.url()}")
        accessible(driver, "06-search-results")
        driver.click(f"a[href='/chart/{daffy}']")
        check(driver.url() == f"{BASE}/chart/{daffy}", "the chart opens by opaque id")
        check("Allergies" in driver.text(), "the chart shows allergies")
        accessible(driver, "07-chart")

        # A note and vital signs, then both in the chart.
        driver.type("#text", "E2E check: quacks less; lisp persists.")
        driver.click("form[action$='/notes'] button")
        check("Note saved." in driver.text(), "the note is saved")
        check("?saved=note" in driver.url(), "the address names what was saved")
        driver.run("document.querySelector('details summary').click(); return true;")
        check("E2E check: quacks less; lisp persists." in driver.text(), "and shown in the chart")
        driver.type("#heart_rate", "7200")
        driver.click("form[action$='/vitals'] button")
        check("Heart rate must be a number from 20 to 250 beats/min." in driver.text(), "a slip is explained")
        accessible(driver, "08-vitals-refused")
        driver.type("#heart_rate", "71")
        driver.type("#systolic", "128")
        driver.type("#diastolic", "82")
        driver.click("form[action$='/vitals'] button")
        check("Vital signs saved." in driver.text(), "the vital signs are saved")
        check("71 /min" in driver.text() and "128 mmHg" in driver.text(), "and are the latest in the chart")

        # A patient outside the team: the closed door, then break-glass, then the banner.
        driver.go(f"{BASE}/chart/{porky}")
        check("Emergency access (break the glass)" in driver.text(), "the refusal offers break-glass")
        check("Porky" not in driver.text(), "nothing of the chart before the glass is broken")
        accessible(driver, "09-break-glass")
        driver.click("#reason option[value='emergency-treatment']")
        driver.type("#note", "E2E: found unresponsive in the waiting room")
        driver.click("form[action$='/break-glass'] button")
        check(driver.url() == f"{BASE}/chart/{porky}", "back to the chart")
        check("Emergency access" in driver.text() and "min left" in driver.text(), "the banner with the time left")
        check("Porky" in driver.text(), "the chart is open")
        accessible(driver, "10-chart-emergency")

        # Nothing identifying in any address visited so far, in a cookie, or in storage.
        cookies = driver.s("GET", "/cookie")
        check([c["name"] for c in cookies] == ["__Host-phivault-session"], f"one cookie only: {cookies}")
        check(cookies[0]["httpOnly"] and cookies[0]["secure"], "HttpOnly and Secure")
        storage = driver.run("return [localStorage.length, sessionStorage.length];")
        check(storage == [0, 0], f"nothing in web storage: {storage}")
        for url in VISITED:
            decoded = urllib.parse.unquote(url)
            for value in PHI:
                check(value not in decoded, f"an identifying value in an address: {url}")
        for cookie in cookies:
            for value in PHI:
                check(value not in cookie["value"], "an identifying value in a cookie")

        # Signing out leaves nothing of the record on screen.
        sign_out(driver)
        driver.go(f"{BASE}/chart/{daffy}")
        check("/login" in driver.url(), "the chart needs signing in again")

        # The front desk registers a patient and puts the physician on the care team.
        sign_in(driver, os.environ["PV_DESK"], os.environ["PV_DESK_PASSWORD"], shots=False)
        accessible(driver, "11-desk-find")
        driver.click("a[href='/desk/register']")
        accessible(driver, "12-desk-register")
        driver.type("#family", "Martian")
        driver.type("#given", "Marvin")
        driver.run("document.querySelector('#birthdate').value = '1948-07-24'; return true;")
        driver.click("#sex option[value='male']")
        driver.type("#phone", "555-0199")
        driver.click("form[action='/desk/register'] button")
        check("Patient registered." in driver.text(), f"registered: {driver.text()[:300]}")
        marvin = driver.url().split("/desk/patient/")[1].split("?")[0]
        accessible(driver, "13-desk-registration")
        driver.click(f"#user option[value='{os.environ['PV_PHYSICIAN_ID']}']")
        driver.click("form[action$='/care-team'] input[value='add'] ~ button")
        check("Care team updated." in driver.text() and "Dr Quincy Test" in driver.text(), "the physician is on the team")
        driver.run("document.querySelector('#date').value = '2099-12-10';"
                   "document.querySelector('#time').value = '09:30'; return true;")
        driver.type("#description", "Check-up")
        driver.click("form[action$='/appointments'] button")
        check("Appointment booked." in driver.text() and "2099-12-10 09:30" in driver.text(), "the appointment is booked")
        accessible(driver, "14-desk-booked")
        sign_out(driver)

        # The physician now finds the new patient among their own.
        sign_in_again(driver, os.environ["PV_USER"], physician_password, physician_codes[0], "/patients")
        check(f"/chart/{marvin}" in driver.source(), "the newly assigned patient is listed")
        driver.click(f"a[href='/chart/{marvin}']")
        check("Allergies" in driver.text(), "and their chart opens")
        sign_out(driver)

        # The patient reads their record, downloads it, and sees who opened it.
        sign_in(driver, os.environ["PV_PATIENT"], os.environ["PV_PATIENT_PASSWORD"], start="/my-record", shots=False)
        check("Your allergies" in driver.text(), "the record in plain words")
        accessible(driver, "15-my-record")
        bundle = driver.run_async(
            "const done = arguments[arguments.length - 1];"
            "fetch('/my-record/download').then(r => r.json()).then(b => done([b.resourceType, b.entry.length]))"
            ".catch(e => done(['error', String(e)]));"
        )
        check(bundle[0] == "Bundle" and bundle[1] > 1, f"the download is a FHIR Bundle: {bundle}")
        driver.click("a[href='/my-record/access']")
        check("Dr Quincy Test" in driver.text() and "opened your chart" in driver.text(), "who opened the chart, by name")
        check(os.environ["PV_PHYSICIAN_ID"] not in driver.source(), "no account ids")
        accessible(driver, "16-who-has-seen")
        sign_out(driver)

        # The administrator: people, one account, a reset request and a new account, with no
        # password on any page; then the privacy officer approves it and alone sees one.
        sign_in(driver, os.environ["PV_ADMIN"], os.environ["PV_ADMIN_PASSWORD"], start="/people", shots=False)
        check("Dr Quincy Test" in driver.text() and "dr-porky" in driver.text(), "people are listed")
        accessible(driver, "17-people")
        driver.click(f"a[href='/people/{os.environ['PV_PHYSICIAN_ID']}']")
        check("live sign-ins" in driver.text() or "No live sign-ins" in driver.text(), "the account's sign-ins")
        accessible(driver, "18-person")
        driver.click("form[action$='/reset-password'] button")
        check("waits for the privacy officer" in driver.text(), f"the reset waits: {driver.text()[:300]}")
        driver.go(f"{BASE}/people/new")
        accessible(driver, "19-new-account")
        driver.type("#display_name", "Dr Sylvester Test")
        driver.type("#username", "dr-sylvester")
        driver.click("input[name=role][value=physician]")
        driver.click("form[action='/people/new'] button")
        check("Dr Sylvester Test" in driver.text() and "not yet enrolled" in driver.text(), "the account is requested")
        check("password:" not in driver.text().lower(), "no password for the administrator")
        sign_out(driver)
        sign_in(driver, os.environ["PV_OFFICER"], os.environ["PV_OFFICER_PASSWORD"], start="/approvals", shots=False)
        check("Dr Sylvester Test (dr-sylvester)" in driver.text(), f"the request waits: {driver.text()[:400]}")
        accessible(driver, "20-approvals")
        driver.click("form[action$='/approve'] button")
        check("in person" in driver.text(), f"approved, with the password to hand over: {driver.text()[:300]}")
        accessible(driver, "21-approved")
        driver.go(f"{BASE}/review/audit")
        driver.click("#outcome option[value='success']")
        driver.click("form[action='/review/audit'] button")
        check("oldest first" in driver.text() and "Dr Quincy Test (physician)" in driver.text(),
              f"the trail, people by name: {driver.text()[:300]}")
        check(driver.url() == f"{BASE}/review/audit", f"no searched value in the address: {driver.url()}")
        accessible(driver, "22-audit-search")
        sign_out(driver)
        for url in VISITED:
            decoded = urllib.parse.unquote(url)
            for value in PHI + ["Marvin", "Martian", "1948-07-24", "555-0199"]:
                check(value not in decoded, f"an identifying value in an address: {url}")
        print(f"addresses visited: {len(VISITED)}")
        print("OK")
    finally:
        driver.quit()
        chromedriver.terminate()
        chromedriver.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


def idle():
    """The idle-logoff warning against a server whose sessions idle out after a minute."""
    profile = tempfile.mkdtemp(prefix="pv-chromium-")
    port = free_port()
    chromedriver = subprocess.Popen(
        [os.environ.get("PV_CHROMEDRIVER", "/usr/bin/chromedriver"), f"--port={port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    driver = WebDriver(port)
    try:
        for _ in range(100):
            try:
                if driver.call("GET", "/status").get("ready"):
                    break
            except Exception:  # not listening yet
                pass
            time.sleep(0.1)
        driver.start(os.environ.get("PV_CHROMIUM", "/usr/bin/chromium"), profile)
        daffy = os.environ["PV_DAFFY"]
        sign_in(driver, os.environ["PV_USER"], os.environ["PV_PASSWORD"], shots=False)
        driver.go(f"{BASE}/chart/{daffy}")
        check("Allergies" in driver.text(), "the chart is open")
        check(driver.run("return document.body.dataset.idleSeconds;") == "60", "a minute's idle timeout")
        started = time.time()
        while time.time() - started < 45 and not driver.run("return !!document.querySelector('.idle-warning');"):
            time.sleep(0.5)
        check(driver.run("return !!document.querySelector('[role=alertdialog]');"), "a warning before the timeout")
        check("signed out in" in driver.text(), "with a countdown")
        accessible(driver, "17-idle-warning")
        # Modal: the focus is on "Stay signed in" and Tab does not leave the dialog.
        check(driver.run("return document.activeElement.textContent;") == "Stay signed in", "the dialog has the focus")
        driver.keys(".idle-warning button", "\ue004\ue004")
        check(driver.run("return document.activeElement.textContent;") == "Stay signed in", "Tab stays in the dialog")
        while time.time() - started < 90 and "/login" not in driver.url():
            time.sleep(0.5)
        check(driver.url().startswith(f"{BASE}/login?next=%2Fchart%2F{daffy}"), f"then the sign-in page: {driver.url()}")
        for value in PHI:
            check(value not in driver.source(), "no identifying value left in the page")
        # And the server agrees: the session has ended.
        driver.go(f"{BASE}/chart/{daffy}")
        check("/login" in driver.url(), "the chart needs signing in again")
        print("OK")
    finally:
        driver.quit()
        chromedriver.terminate()
        chromedriver.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    if os.environ.get("PV_MODE") == "idle":
        idle()
    else:
        main()
