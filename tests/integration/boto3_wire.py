"""Drives the sechub-triage emulator with boto3 and reports, as JSON on
stdout, how botocore parsed and classified each answer.

Run by tests/boto3_wire.rs, which starts the emulator and passes:
  argv[1]  the emulator's base URL (http://127.0.0.1:PORT)
  argv[2]  a JSON file: {"keys": [{"Id": ..., "ProductArn": ...}, ...]}
  argv[3]  optional: "v2" for the new Security Hub operations (boto3 and the
           AWS CLI v1 found next to this Python or on PATH)
Exit code 3 means boto3 could not be imported, 4 that the AWS CLI is missing.
"""

import json
import os
import re
import shutil
import subprocess
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
# "v1" (default): BatchUpdateFindings/GetFindings with boto3.
# "v2": the new Security Hub operations with boto3 and the AWS CLI; the
# keys file then holds {"keys": [{"MetadataUid", "CloudAccountUid",
# "FindingInfoUid", "MetadataProductUid"}, ...]}.
MODE = sys.argv[3] if len(sys.argv) > 3 else "v1"


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


def run_v1():
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

    return results


# ---------------------------------------------------------------- V2

def triple(k):
    return {
        "CloudAccountUid": k["CloudAccountUid"],
        "FindingInfoUid": k["FindingInfoUid"],
        "MetadataProductUid": k["MetadataProductUid"],
    }


def client_in(region, max_attempts=1):
    return boto3.client(
        "securityhub",
        region_name=region,
        endpoint_url=URL,
        aws_access_key_id="AKIDBOTO",
        aws_secret_access_key="secret",
        config=Config(retries={"mode": "standard", "total_max_attempts": max_attempts}),
    )


def v2_update_uids(keys, **fields):
    return lambda c: c.batch_update_findings_v2(
        MetadataUids=[k["MetadataUid"] for k in keys], **fields
    )


def v2_update_triples(keys, **fields):
    return lambda c: c.batch_update_findings_v2(
        FindingIdentifiers=[triple(k) for k in keys], **fields
    )


AWS = os.path.join(os.path.dirname(sys.executable), "aws")
if MODE == "v2" and not os.path.exists(AWS):
    AWS = shutil.which("aws")
    if AWS is None:  # the Rust side turns this into a failing test
        print("cannot find the AWS CLI (aws) next to this Python or on PATH", file=sys.stderr)
        sys.exit(4)
CLI_ERROR = re.compile(r"An error occurred \((\w+)\) when calling the (\w+) operation")


def cli(name, args, region="us-east-1", max_attempts=1):
    """Runs the AWS CLI against the emulator; reports its parsed output or
    the error code it printed."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ACCESS_KEY_ID": "AKIDCLI",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_DEFAULT_REGION": region,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_MAX_ATTEMPTS": str(max_attempts),
        "AWS_RETRY_MODE": "standard",
        "AWS_PAGER": "",
    }
    p = subprocess.run(
        [AWS, "securityhub", *args, "--endpoint-url", URL, "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    out = {"name": "cli_" + name, "exit": p.returncode}
    if p.returncode == 0:
        out["ok"] = True
        out["response"] = json.loads(p.stdout) if p.stdout.strip() else {}
    else:
        out["ok"] = False
        m = CLI_ERROR.search(p.stderr)
        out["code"] = m.group(1) if m else None
        out["operation"] = m.group(2) if m else None
        out["stderr"] = p.stderr[-2000:]
    return out


def run_v2():
    results = []
    r = results.append
    k = KEYS
    # Success in both identifier forms, with per-entry codes.
    r(scenario("v2_describe", lambda c: c.describe_security_hub_v2()))
    r(scenario("v2_update_uids", v2_update_uids(k[:2] + [{"MetadataUid": "no-such-finding"}], StatusId=4, Comment="fixed in CHG-1")))
    r(scenario("v2_update_triples", v2_update_triples(k[2:4], SeverityId=5)))
    r(scenario("v2_duplicate", v2_update_uids([k[4], k[4]], StatusId=2)))
    admin("PUT", "/_emulator/faults", {"concurrent_update_error": 1.0})
    r(scenario("v2_entry_conflict", v2_update_uids(k[5:6], StatusId=2)))
    admin("PUT", "/_emulator/faults", {"internal_failure": 1.0})
    r(scenario("v2_entry_internal", v2_update_uids(k[5:6], StatusId=2)))
    admin("PUT", "/_emulator/faults", {})
    # Request-level errors.
    r(scenario("v2_validation", lambda c: c.batch_update_findings_v2(
        MetadataUids=[k[0]["MetadataUid"]], FindingIdentifiers=[triple(k[1])], StatusId=1)))
    r(scenario("v2_validation_value", v2_update_uids(k[:1], StatusId=6)))
    admin("PUT", "/_emulator/faults", {"access_denied": True})
    r(scenario("v2_access_denied", v2_update_uids(k[:1], StatusId=2)))
    admin("PUT", "/_emulator/faults", {"http_500": 1.0})
    r(scenario("v2_internal", v2_update_uids(k[:1], StatusId=2)))
    admin("PUT", "/_emulator/faults", {})
    admin("PUT", "/_emulator/v2/config", {"faults": {"request_conflict": 1.0}})
    r(scenario("v2_conflict", v2_update_uids(k[:1], StatusId=2)))
    admin("PUT", "/_emulator/v2/config", {})
    admin("PUT", "/_emulator/throttle", {"enabled": True})
    admin("PUT", "/_emulator/v2/config", {"throttle": {"batch_update_v2": {"rate": 0.0001, "burst": 0}}})
    r(scenario("v2_throttled", v2_update_uids(k[:1], StatusId=2), 3))
    admin("PUT", "/_emulator/v2/config", {})
    admin("PUT", "/_emulator/throttle", {"enabled": False})
    admin("PUT", "/_emulator/v2/regions/eu-west-1", {"enabled": False})
    # GetFindingsV2: the paginator, and a filter.
    pages = client(1).get_paginator("get_findings_v2").paginate(PaginationConfig={"PageSize": 7})
    seen = [f["metadata"]["uid"] for page in pages for f in page["Findings"]]
    r({"name": "v2_paginate", "ok": True, "count": len(seen), "distinct": len(set(seen))})
    r(scenario("v2_filtered", lambda c: c.get_findings_v2(Filters={
        "CompositeOperator": "AND",
        "CompositeFilters": [{
            "Operator": "OR",
            "StringFilters": [
                {"FieldName": "comment", "Filter": {"Comparison": "CONTAINS", "Value": "CHG-1"}},
                {"FieldName": "finding_info.uid", "Filter": {"Comparison": "EQUALS", "Value": k[2]["FindingInfoUid"]}},
            ],
        }],
    })))
    r(scenario("v2_bad_token", lambda c: c.get_findings_v2(NextToken="garbage")))
    # The not-enabled Region, through a client in it.
    c = client_in("eu-west-1")
    c.meta.events.register("needs-retry.securityhub", _classify)
    CLASSIFIED.clear()
    try:
        c.describe_security_hub_v2()
        r({"name": "v2_not_enabled_region", "ok": True})
    except ClientError as e:
        r({"name": "v2_not_enabled_region", "ok": False,
           "code": e.response["Error"]["Code"],
           "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
           "modeled_class": type(e).__name__ if type(e) is not ClientError else None})

    # ---- the AWS CLI (v1), same operations and codes
    r(cli("describe", ["describe-security-hub-v2"]))
    r(cli("update_uids", ["batch-update-findings-v2", "--metadata-uids", k[6]["MetadataUid"], "no-such-finding",
                          "--status-id", "3", "--comment", "accepted risk"]))
    r(cli("update_triples", ["batch-update-findings-v2", "--finding-identifiers",
                             json.dumps([triple(k[7]), triple(k[8])]), "--severity-id", "1"]))
    r(cli("get", ["get-findings-v2", "--page-size", "7"]))
    r(cli("get_filtered", ["get-findings-v2", "--filters", json.dumps({"CompositeFilters": [{"StringFilters": [
        {"FieldName": "metadata.uid", "Filter": {"Comparison": "EQUALS", "Value": k[6]["MetadataUid"]}}]}]})]))
    r(cli("validation", ["batch-update-findings-v2", "--metadata-uids", k[0]["MetadataUid"], "--status-id", "7"]))
    admin("PUT", "/_emulator/faults", {"access_denied": True})
    r(cli("access_denied", ["batch-update-findings-v2", "--metadata-uids", k[0]["MetadataUid"], "--status-id", "2"]))
    admin("PUT", "/_emulator/faults", {"http_500": 1.0})
    r(cli("internal", ["batch-update-findings-v2", "--metadata-uids", k[0]["MetadataUid"], "--status-id", "2"]))
    admin("PUT", "/_emulator/faults", {})
    admin("PUT", "/_emulator/v2/config", {"faults": {"request_conflict": 1.0}})
    r(cli("conflict", ["batch-update-findings-v2", "--metadata-uids", k[0]["MetadataUid"], "--status-id", "2"]))
    admin("PUT", "/_emulator/v2/config", {"disabled_regions": ["eu-west-1"]})
    admin("PUT", "/_emulator/throttle", {"enabled": True})
    admin("PUT", "/_emulator/v2/config", {"disabled_regions": ["eu-west-1"], "throttle": {"get_findings_v2": {"rate": 0.0001, "burst": 0}}})
    r(cli("throttled", ["get-findings-v2"]))
    admin("PUT", "/_emulator/throttle", {"enabled": False})
    r(cli("not_enabled", ["describe-security-hub-v2"], region="eu-west-1"))
    return results


if MODE == "v2":
    results = run_v2()
else:
    results = run_v1()
print(json.dumps({"boto3": boto3.__version__, "botocore": botocore.__version__, "results": results}))
