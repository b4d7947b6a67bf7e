"""Schemathesis hooks for tests/api-contract/run.sh: every generated request is signed in.

The session cookie and the CSRF pair (the `csrftoken` cookie and the `X-CSRF-Token` header) come
from a real sign-in through the API, made again whenever a request answers 401: the fuzzer signs
itself out (`POST /api/v1/auth/sign-out`, `DELETE` of its own session), and that must not leave the
rest of the run knocking on a closed door. A case that schemathesis made without a credential on
purpose (to check that the API refuses it) is left without it.
"""

import os

import requests
import schemathesis
# A private helper (the version is pinned in the Makefile): whether schemathesis left a credential
# out of this case on purpose, to see the API refuse it.
from schemathesis.auths import _should_skip_auth_for_negative_testing
from schemathesis.core.parameters import ParameterLocation

BASE = os.environ["CONTRACT_BASE_URL"]
USERNAME = os.environ["CONTRACT_USERNAME"]
PASSWORD = os.environ["CONTRACT_PASSWORD"]
# The server trusts 127.0.0.1 as a proxy (TRUSTED_PROXIES), so these sign-ins come from an address
# of their own: the fuzzer's failed sign-ins and confirmations, all from 127.0.0.1, lock that
# address out (as they should), never this one. One browser throughout, so the account's device
# cookie vouches for it too.
SIGN_IN_ADDRESS = "198.51.100.7"
browser = requests.Session()
browser.headers["X-Forwarded-For"] = SIGN_IN_ADDRESS


@schemathesis.auth(refresh_interval=600)
class SignedIn:
    def get(self, case, context):
        browser.cookies.pop("session", None)
        browser.get(f"{BASE}/api/v1/auth/csrf", timeout=10).raise_for_status()
        csrf = browser.cookies["csrftoken"]
        response = browser.post(
            f"{BASE}/api/v1/auth/sign-in",
            json={"username": USERNAME, "password": PASSWORD},
            headers={"X-CSRF-Token": csrf},
            timeout=30,
        )
        response.raise_for_status()
        return {"session": browser.cookies["session"], "csrftoken": browser.cookies["csrftoken"]}

    def set(self, case, data, context):
        cookies = case.cookies if isinstance(case.cookies, dict) else {}
        if not _should_skip_auth_for_negative_testing(case, "session", ParameterLocation.COOKIE):
            cookies["session"] = data["session"]
        cookies["csrftoken"] = data["csrftoken"]
        case.cookies = cookies
        if not _should_skip_auth_for_negative_testing(case, "X-CSRF-Token", ParameterLocation.HEADER):
            headers = case.headers if isinstance(case.headers, dict) else {}
            headers["X-CSRF-Token"] = data["csrftoken"]
            case.headers = headers
