#!/usr/bin/env python3
"""Stream through a running `breakerbox sim` with the official `boto3` `bedrock-runtime` client,
unchanged (`endpoint_url` pointed at the simulator, dummy credentials), and check that each
simulated fault surfaces as the exception boto3 documents.

Usage: check_bedrock.py http://127.0.0.1:PORT

Expects a provider named `bedrock` speaking protocol `bedrock` (tests/sdk/bedrock.toml), no fault
set. Prints one line per check and exits non-zero if any check fails. Retries are off
(total_max_attempts=1), so every fault reaches the caller as it was sent.
"""

import json
import sys
import urllib.request

import boto3
import botocore
import botocore.eventstream
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError

if len(sys.argv) != 2:
    sys.exit(__doc__)
BASE = sys.argv[1].rstrip("/")
ENDPOINT = f"{BASE}/bedrock"
MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
CONFIG = Config(retries={"total_max_attempts": 1}, read_timeout=30, connect_timeout=5)


def client(**extra):
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        config=CONFIG,
        **extra,
    )


SIGNED = client(aws_access_key_id="AKIDSIMULATED", aws_secret_access_key="not-a-real-secret")
MESSAGES = [{"role": "user", "content": [{"text": "Why is the sky blue?"}]}]
WEATHER = {
    "tools": [
        {
            "toolSpec": {
                "name": "get_weather",
                "description": "The weather in a city",
                "inputSchema": {
                    "json": {
                        "type": "object",
                        "properties": {"location": {"type": "string"}},
                        "required": ["location"],
                    }
                },
            }
        }
    ]
}

failures = []


def check(name, fn):
    try:
        fn()
        print(f"ok   {name}")
    except Exception as e:  # noqa: BLE001 — every failure is reported, then the run fails
        failures.append(name)
        print(f"FAIL {name}: {type(e).__name__}: {e}")


def set_fault(fault):
    request = urllib.request.Request(
        f"{BASE}/_sim/providers/bedrock/fault", data=fault.encode(), method="PUT"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200, response.status


def stream(c=SIGNED, messages=MESSAGES, **kwargs):
    """converse_stream's events, in order."""
    response = c.converse_stream(modelId=MODEL, messages=messages, **kwargs)
    return list(response["stream"])


def streams_text():
    events = stream(inferenceConfig={"maxTokens": 256})
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart", kinds
    assert kinds[-2:] == ["messageStop", "metadata"], kinds
    text = "".join(
        e["contentBlockDelta"]["delta"].get("text", "")
        for e in events
        if "contentBlockDelta" in e
    )
    assert text.strip(), events
    assert events[-2]["messageStop"]["stopReason"] == "end_turn", events[-2]
    usage = events[-1]["metadata"]["usage"]
    assert usage["inputTokens"] > 0 and usage["outputTokens"] > 0, usage
    assert "latencyMs" in events[-1]["metadata"]["metrics"]


def streams_a_tool_call():
    events = stream(
        messages=[{"role": "user", "content": [{"text": "What is the weather in 'Paris'?"}]}],
        toolConfig=WEATHER,
    )
    starts = [e["contentBlockStart"]["start"]["toolUse"] for e in events if "contentBlockStart" in e]
    assert starts and starts[0]["name"] == "get_weather", events
    index = next(e["contentBlockStart"]["contentBlockIndex"] for e in events if "contentBlockStart" in e)
    pieces = "".join(
        e["contentBlockDelta"]["delta"]["toolUse"]["input"]
        for e in events
        if "contentBlockDelta" in e and e["contentBlockDelta"]["contentBlockIndex"] == index
    )
    assert "location" in json.loads(pieces), pieces
    stop = next(e["messageStop"]["stopReason"] for e in events if "messageStop" in e)
    assert stop == "tool_use", stop


def answers_whole():
    response = SIGNED.converse(
        modelId=MODEL,
        messages=MESSAGES,
        system=[{"text": "You are terse."}],
        inferenceConfig={"maxTokens": 256, "temperature": 0.2},
    )
    content = response["output"]["message"]["content"]
    assert response["output"]["message"]["role"] == "assistant"
    assert content[0]["text"].strip(), content
    assert response["stopReason"] == "end_turn"
    assert response["usage"]["totalTokens"] >= response["usage"]["inputTokens"]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["ResponseMetadata"]["RequestId"]


def http_fault(fault, code, status):
    def run():
        set_fault(fault)
        try:
            for call in (lambda: stream(), lambda: SIGNED.converse(modelId=MODEL, messages=MESSAGES)):
                try:
                    call()
                except ClientError as e:
                    got = (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])
                    assert got == (code, status), got
                    assert e.response["Error"]["Message"], e.response
                else:
                    raise AssertionError(f"{fault}: no error")
        finally:
            set_fault("none")

    return run


def stream_fault(fault, code):
    def run():
        set_fault(fault)
        try:
            response = SIGNED.converse_stream(modelId=MODEL, messages=MESSAGES)
            seen = []
            try:
                for event in response["stream"]:
                    seen.append(next(iter(event)))
            except EventStreamError as e:
                assert e.response["Error"]["Code"] == code, e.response
                assert "messageStop" not in seen, seen
                assert "contentBlockDelta" in seen, seen
            else:
                raise AssertionError(f"{fault}: the stream ended cleanly: {seen}")
        finally:
            set_fault("none")

    return run


def malformed_fails_the_stream():
    set_fault("malformed:after=2")
    try:
        response = SIGNED.converse_stream(modelId=MODEL, messages=MESSAGES)
        try:
            list(response["stream"])
        except botocore.eventstream.ChecksumMismatch:
            return
        raise AssertionError("a message with a bad checksum was accepted")
    finally:
        set_fault("none")


def unsigned_is_refused():
    c = boto3.client(
        "bedrock-runtime",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        config=CONFIG.merge(Config(signature_version=botocore.UNSIGNED)),
    )
    try:
        c.converse(modelId=MODEL, messages=MESSAGES)
    except ClientError as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 403, e.response
        return
    raise AssertionError("an unsigned request was answered")


check("converse_stream: text, stop reason, usage", streams_text)
check("converse_stream: a tool call", streams_a_tool_call)
check("converse: the whole reply", answers_whole)
check("unsigned requests are refused (403)", unsigned_is_refused)
for fault, code, status in [
    ("rate_limit", "ThrottlingException", 429),
    ("overloaded", "ServiceUnavailableException", 503),
    ("server_error", "InternalServerException", 500),
    ("auth", "UnrecognizedClientException", 403),
    ("bad_request", "ValidationException", 400),
    ("context_length", "ValidationException", 400),
    ("quota", "ServiceQuotaExceededException", 400),
]:
    check(f"{fault} → {code} ({status})", http_fault(fault, code, status))
for fault, code in [
    ("mid_stream_error:after=2", "serviceUnavailableException"),
    ("mid_stream_error:after=2,type=throttlingException", "throttlingException"),
    ("mid_stream_error:after=2,type=api_error", "modelStreamErrorException"),
]:
    check(f"{fault} → EventStreamError {code}", stream_fault(fault, code))
check("malformed fails the stream", malformed_fails_the_stream)

print(f"{len(failures)} failed" if failures else "all Bedrock checks passed")
sys.exit(1 if failures else 0)
