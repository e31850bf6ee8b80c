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


def element_id(reference):
    """The id in a W3C web element reference (its one key is the spec's element identifier)."""
    return next(iter(reference.values()))


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

    def click(self, css):
        self.s("POST", f"/element/{self.find(css)}/click", {})
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


def sign_in(driver, user, password):
    driver.go(f"{BASE}/patients")
    check("/login?next=%2Fpatients" in driver.url(), f"signed-out visit goes to sign-in: {driver.url()}")
    accessible(driver, "01-sign-in")
    driver.type("#username", user)
    driver.type("#password", password)
    driver.click("button[type=submit]")
    check(driver.url().startswith(f"{BASE}/login/password"), f"first sign-in asks for a new password: {driver.url()}")
    accessible(driver, "02-new-password")
    new_password = "a long new password for the e2e physician"
    driver.type("#current", password)
    driver.type("#new", new_password)
    driver.type("#repeat", new_password)
    driver.click("button[type=submit]")
    check(driver.url().startswith(f"{BASE}/login/enrol"), f"then enrolment: {driver.url()}")
    accessible(driver, "03-enrol")
    secret = driver.run("return document.querySelector('code').textContent;")
    totp = pyotp.TOTP(secret)
    driver.type("#code", totp.now())
    driver.click("button[type=submit]")
    check("Recovery codes" in driver.text(), "recovery codes are shown once")
    accessible(driver, "04-recovery-codes")
    driver.click("main a")
    check(driver.url() == f"{BASE}/patients", f"and back where the visit began: {driver.url()}")


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

        sign_in(driver, os.environ["PV_USER"], os.environ["PV_PASSWORD"])
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

        # Nothing identifying in any address visited, in a cookie, or in storage.
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
        driver.click("header form.signout button")
        check(driver.url().startswith(f"{BASE}/login"), "signed out to the sign-in page")
        for value in PHI:
            check(value not in driver.source(), "no identifying value left in the page")
        driver.go(f"{BASE}/chart/{daffy}")
        check("/login" in driver.url(), "the chart needs signing in again")
        print(f"addresses visited: {len(VISITED)}")
        print("OK")
    finally:
        driver.quit()
        chromedriver.terminate()
        chromedriver.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
