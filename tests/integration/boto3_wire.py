"""Drives the sechub-triage emulator with boto3 and reports, as JSON on
stdout, how botocore parsed and classified each answer.

Run by tests/boto3_wire.rs, which starts the emulator and passes:
  argv[1]  the emulator's base URL (http://127.0.0.1:PORT)
  argv[2]  a JSON file: {"keys": [{"Id": ..., "ProductArn": ...}, ...]}
Exit code 3 means boto3 could not be imported.
"""

import json
import sys
import urllib.request

try:
    import boto3
    import botocore
    from botocore.config import Config
    from botocore.exceptions import ClientError
    from botocore.retries.standard import (
        RetryContext,
        StandardRetryConditions,
        ThrottlingErrorDetector,
        RetryEventAdapter,
    )
except ImportError as e:  # the Rust side turns this into a failing test
    print(f"cannot import boto3/botocore: {e}", file=sys.stderr)
    sys.exit(3)

URL = sys.argv[1]
with open(sys.argv[2]) as f:
    KEYS = json.load(f)["keys"]


def admin(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(URL + path, data=data, method=method)
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def client(max_attempts):
    return boto3.client(
        "securityhub",
        region_name="us-east-1",
        endpoint_url=URL,
        aws_access_key_id="AKIDBOTO",
        aws_secret_access_key="secret",
        config=Config(retries={"mode": "standard", "total_max_attempts": max_attempts}),
    )


# What botocore's own standard-mode retry logic decides, captured from the
# real needs-retry event of each attempt.
CLASSIFIED = []
_adapter = RetryEventAdapter()
_throttling = ThrottlingErrorDetector(_adapter)
_conditions = StandardRetryConditions(max_attempts=99)


def _classify(**kwargs):
    ctx = _adapter.create_retry_context(**kwargs)
    CLASSIFIED.append(
        {
            "throttling": _throttling.is_throttling_error_from_context(ctx),
            "retryable": _conditions.is_retryable(ctx),
        }
    )
    return None  # leave the decision to botocore


def scenario(name, call, max_attempts=1):
    c = client(max_attempts)
    c.meta.events.register("needs-retry.securityhub", _classify)
    CLASSIFIED.clear()
    out = {"name": name}
    try:
        resp = call(c)
        out["ok"] = True
        out["status"] = resp["ResponseMetadata"]["HTTPStatusCode"]
        out["request_id"] = resp["ResponseMetadata"].get("RequestId")
        out["response"] = {k: v for k, v in resp.items() if k != "ResponseMetadata"}
    except ClientError as e:
        out["ok"] = False
        out["code"] = e.response["Error"]["Code"]
        out["message"] = e.response["Error"].get("Message")
        out["status"] = e.response["ResponseMetadata"]["HTTPStatusCode"]
        out["request_id"] = e.response["ResponseMetadata"].get("RequestId")
        out["attempts"] = e.response["ResponseMetadata"].get("RetryAttempts", 0) + 1
        # A modelled error raises its own exception class.
        out["modeled_class"] = type(e).__name__ if type(e) is not ClientError else None
    out["classified"] = CLASSIFIED[0] if CLASSIFIED else None
    return out


def ids(keys):
    return [{"Id": k["Id"], "ProductArn": k["ProductArn"]} for k in keys]


def update(keys, **extra):
    return lambda c: c.batch_update_findings(
        FindingIdentifiers=ids(keys), Workflow={"Status": "RESOLVED"}, **extra
    )


results = []
results.append(scenario("success", update(KEYS[:2])))
results.append(
    scenario(
        "not_found",
        update([{"Id": "no-such-finding", "ProductArn": KEYS[0]["ProductArn"]}]),
    )
)
# botocore validates only min constraints client-side, so 101 reaches the server.
results.append(scenario("invalid_input", update(KEYS[:1], Confidence=101), 3))

admin("PUT", "/_emulator/throttle", {"enabled": True, "batch_update": {"rate": 0.0001, "burst": 0}})
results.append(scenario("throttled_limit_exceeded", update(KEYS[:1]), 3))
admin(
    "PUT",
    "/_emulator/throttle",
    {"enabled": True, "batch_update": {"rate": 0.0001, "burst": 0}, "code": "TooManyRequestsException"},
)
results.append(scenario("throttled_too_many_requests", update(KEYS[:1]), 3))
admin("PUT", "/_emulator/throttle", {"enabled": False})

for name, faults in [
    ("internal_exception", {"http_500": 1.0}),
    ("service_unavailable", {"http_503": 1.0}),
    ("invalid_access", {"invalid_access": True}),
    ("access_denied", {"access_denied": True}),
]:
    admin("PUT", "/_emulator/faults", faults)
    results.append(scenario(name, update(KEYS[:1])))
admin("PUT", "/_emulator/faults", {})

pages = client(1).get_paginator("get_findings").paginate(PaginationConfig={"PageSize": 40})
seen = [f["Id"] for page in pages for f in page["Findings"]]
results.append({"name": "paginate", "ok": True, "count": len(seen), "distinct": len(set(seen))})

print(json.dumps({"boto3": boto3.__version__, "botocore": botocore.__version__, "results": results}))
