"""An independent SMART on FHIR client against a running phivault.

Signs a new user in through the browser pages (temporary password, new password, TOTP
enrolment with codes from pyotp), then runs the OAuth 2.0 authorization-code flow with PKCE
S256 using Authlib's standard client, and reads a Patient with the access token.
Prints one line per step; exits non-zero on the first failure.
"""

import html
import os
import re
import secrets
import sys
import time

import pyotp
import requests
from authlib.integrations.requests_client import OAuth2Session

BASE = os.environ["PV_BASE"]
CA = os.environ["PV_CA"]
USER = os.environ["PV_USER"]
TEMP_PASSWORD = os.environ["PV_PASSWORD"]
CLIENT_ID = os.environ["PV_CLIENT_ID"]
REDIRECT = os.environ["PV_REDIRECT"]
NEW_PASSWORD = "porky pig stutters through the week"


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


def hidden_fields(page):
    return {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)
    }


browser = requests.Session()
browser.verify = CA
origin = {"Origin": BASE}

r = browser.post(f"{BASE}/login", data={"username": USER, "password": TEMP_PASSWORD}, headers=origin, allow_redirects=False)
if r.status_code != 303 or not r.headers["Location"].startswith("/login/password"):
    fail(f"login: {r.status_code} {r.headers.get('Location')}")
print("password accepted; a new password is due")

page = browser.get(f"{BASE}/login/password").text
fields = hidden_fields(page)
fields.update({"current": TEMP_PASSWORD, "new": NEW_PASSWORD, "repeat": NEW_PASSWORD})
r = browser.post(f"{BASE}/login/password", data=fields, headers=origin, allow_redirects=False)
if r.status_code != 303 or not r.headers["Location"].startswith("/login/enrol"):
    fail(f"password change: {r.status_code} {r.headers.get('Location')}")
print("password changed; TOTP enrolment is due")

page = browser.get(f"{BASE}/login/enrol").text
match = re.search(r"type the key <code>([A-Z2-7]+)</code>", page)
if not match or "<svg" not in page:
    fail("enrolment page shows no key or QR code")
totp = pyotp.TOTP(match.group(1))
fields = hidden_fields(page)
fields["code"] = totp.now()
r = browser.post(f"{BASE}/login/enrol", data=fields, headers=origin, allow_redirects=False)
if r.status_code != 200 or r.text.count("<li>") != 10:
    fail(f"TOTP confirmation: {r.status_code}")
print("pyotp code accepted; ten recovery codes shown")

# A second, separate sign-in to prove the TOTP factor (pyotp's code for the next step
# window avoids the one already used).
browser.cookies.clear()
r = browser.post(f"{BASE}/login", data={"username": USER, "password": NEW_PASSWORD}, headers=origin, allow_redirects=False)
if r.status_code != 303 or not r.headers["Location"].startswith("/login/mfa"):
    fail(f"second login: {r.status_code} {r.headers.get('Location')}")
page = browser.get(f"{BASE}/login/mfa").text
fields = hidden_fields(page)
for attempt in range(3):
    fields["code"] = totp.at(time.time() + 30 * attempt)
    r = browser.post(f"{BASE}/login/mfa", data=fields, headers=origin, allow_redirects=False)
    if r.status_code == 303:
        break
else:
    fail("no pyotp code was accepted at the second sign-in")
print("signed in again with password and pyotp code")

verifier = secrets.token_urlsafe(48)
oauth = OAuth2Session(
    CLIENT_ID,
    redirect_uri=REDIRECT,
    scope="openid offline_access user/Patient.rs",
    code_challenge_method="S256",
    token_endpoint_auth_method="none",
)
oauth.verify = CA
url, state = oauth.create_authorization_url(f"{BASE}/oauth/authorize", code_verifier=verifier, aud=f"{BASE}/fhir")
consent = browser.get(url)
if consent.status_code != 200 or "Allow access?" not in consent.text:
    fail(f"consent page: {consent.status_code}")
fields = hidden_fields(consent.text)
fields["decision"] = "allow"
r = browser.post(f"{BASE}/oauth/authorize", data=fields, headers=origin, allow_redirects=False)
location = r.headers.get("Location", "")
if r.status_code != 303 or not location.startswith(REDIRECT):
    fail(f"authorize: {r.status_code} {location}")
print("user consented; authorization code received")

token = oauth.fetch_token(f"{BASE}/oauth/token", authorization_response=location, code_verifier=verifier)
if token.get("token_type") != "Bearer" or "id_token" not in token or "refresh_token" not in token:
    fail(f"token response lacks fields: {sorted(token)}")
print(f"token issued with scope: {token['scope']}")

search = oauth.get(f"{BASE}/fhir/Patient", params={"family": "Duck"})
if search.status_code != 200 or not search.json().get("entry"):
    fail(f"search: {search.status_code}")
patient_id = search.json()["entry"][0]["resource"]["id"]
read = oauth.get(f"{BASE}/fhir/Patient/{patient_id}")
if read.status_code != 200 or read.json().get("resourceType") != "Patient":
    fail(f"read: {read.status_code}")
print("read Patient with the access token")

refreshed = oauth.refresh_token(f"{BASE}/oauth/token", refresh_token=token["refresh_token"], client_id=CLIENT_ID)
if oauth.get(f"{BASE}/fhir/Patient/{patient_id}").status_code != 200:
    fail("read after refresh")
print("refreshed the token and read again")

anonymous = requests.get(f"{BASE}/fhir/Patient/{patient_id}", verify=CA)
if anonymous.status_code != 401 or "Bearer" not in anonymous.headers.get("WWW-Authenticate", ""):
    fail(f"anonymous read: {anonymous.status_code}")
print("OK")
