"""Signs requests with botocore's SigV4Auth and sends them with urllib.

Used by botocore_test.go. Reads a JSON list of cases on stdin, writes a JSON list of
{"status", "body", "authorization"} on stdout. botocore signs with the current time.
"""
import json
import sys
import urllib.error
import urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def run(case):
    request = AWSRequest(
        method="POST",
        url=case["url"],
        data=case.get("body", "").encode(),
        headers=case.get("headers", {}),
        params=case.get("params", {}),
    )
    if case.get("unsignedPayload"):
        request.context["payload_signing_enabled"] = False
    creds = Credentials(case["accessKeyId"], case["secretAccessKey"], case.get("sessionToken"))
    SigV4Auth(creds, "kinesisvideo", case["region"]).add_auth(request)
    prepared = request.prepare()

    data = prepared.body
    headers = dict(prepared.headers.items())
    if case.get("chunked"):
        # An iterable body without Content-Length makes urllib send Transfer-Encoding: chunked.
        data = iter([data[:3], data[3:]])
        headers.pop("Content-Length", None)
    sent = urllib.request.Request(prepared.url, data=data, method=prepared.method, headers=headers)
    try:
        with urllib.request.urlopen(sent, timeout=10) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read()
    return {"status": status, "body": body.decode(),
            "authorization": prepared.headers.get("Authorization", "")}


json.dump([run(case) for case in json.load(sys.stdin)], sys.stdout)
