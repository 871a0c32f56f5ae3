"""The example client code of seed 002 (Feb 2026 guide), run unchanged against the sandbox.

`_REFRESH_SNIPPET` and `_RETRY_SNIPPET` are the guide's "Python Example" (token refresh) and its
`make_request_with_retry`, verbatim. The seed file as stored lost the code's leading
indentation (a text extraction artefact), so the only edit is restoring Python's indentation;
not a token of the code is changed. At import time the production base URL is swapped for
the sandbox URL (`LG_SANDBOX_URL`, set by `load(base_url)`) and the code is executed into this
module's namespace, so `refresh_token`, `get_valid_token` and `make_request_with_retry` are the
seed's own functions. The guide's trailing "Usage example" (which needs an `access_token`
variable) is not included.
"""

from __future__ import annotations

import types
from typing import Any

PRODUCTION_BASE_URL = "https://last.leadgenius.app"

_REFRESH_SNIPPET = '''
import requests
import json
import time

def refresh_token(refresh_token):
    response = requests.post(
        "https://last.leadgenius.app/api/auth/refresh",
        json={"refreshToken": refresh_token}
    )
    return response.json()

def get_valid_token(auth_file="~/.leadgenius_auth.json"):
    with open(auth_file, 'r') as f:
        auth = json.load(f)

    # Check if token is expired (simple check)
    # In production, decode JWT and check exp claim
    try:
        # Make a test request
        response = requests.get(
            "https://last.leadgenius.app/api/clients",
            headers={"Authorization": f"Bearer {auth['token']}"}
        )
        if response.status_code == 401:
            # Token expired, refresh it
            new_tokens = refresh_token(auth['refresh_token'])
            auth['token'] = new_tokens['tokens']['accessToken']
            with open(auth_file, 'w') as f:
                json.dump(auth, f)
        return auth['token']
    except:
        return auth['token']
'''

_RETRY_SNIPPET = '''
import time
import requests
from requests.exceptions import HTTPError

def make_request_with_retry(url, headers, method="GET", json_data=None, max_retries=5):
    """Make API request with automatic retry on rate limits and server errors."""
    for attempt in range(max_retries):
        try:
            if method == "GET":
                response = requests.get(url, headers=headers)
            elif method == "POST":
                response = requests.post(url, headers=headers, json=json_data)
            elif method == "PUT":
                response = requests.put(url, headers=headers, json=json_data)
            elif method == "DELETE":
                response = requests.delete(url, headers=headers, json=json_data)

            response.raise_for_status()
            return response.json()

        except HTTPError as e:
            if e.response.status_code == 429:
                # Rate limited - exponential backoff
                wait_time = min(60 * (2 ** attempt), 300) # Max 5 minutes
                print(f"Rate limited. Waiting {wait_time}s (attempt {attempt + 1}/{max_retries})...")
                time.sleep(wait_time)
            elif e.response.status_code >= 500:
                # Server error - retry with backoff
                wait_time = min(10 * (2 ** attempt), 60) # Max 1 minute
                print(f"Server error. Waiting {wait_time}s (attempt {attempt + 1}/{max_retries})...")
                time.sleep(wait_time)
            elif e.response.status_code == 401:
                # Token expired - try to refresh
                print("Token expired. Attempting refresh...")
                # Implement token refresh here
                raise
            else:
                # Other errors - don't retry
                raise
        except Exception as e:
            print(f"Unexpected error: {e}")
            raise

    raise Exception(f"Max retries ({max_retries}) exceeded")
'''


def load(base_url: str) -> types.ModuleType:
    """A fresh module holding the seed's functions, talking to `base_url` instead of production."""
    module = types.ModuleType("seed_002_snippets")
    module.__dict__["LG_SANDBOX_URL"] = base_url
    for snippet in (_REFRESH_SNIPPET, _RETRY_SNIPPET):
        code = snippet.replace(PRODUCTION_BASE_URL, base_url.rstrip("/"))
        exec(compile(code, f"<seed 002 snippet for {base_url}>", "exec"), module.__dict__)
    return module


def functions(module: types.ModuleType) -> dict[str, Any]:
    """The seed functions a module from `load()` exposes."""
    return {name: getattr(module, name) for name in ("refresh_token", "get_valid_token", "make_request_with_retry")}
