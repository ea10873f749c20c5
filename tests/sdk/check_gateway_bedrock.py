#!/usr/bin/env python3
"""boto3's bedrock-runtime client through the gateway, unchanged: `endpoint_url` is the gateway,
the credentials are dummies (the gateway does not verify SigV4; on loopback without a token it
needs none).

Usage: check_gateway_bedrock.py http://127.0.0.1:PORT

Expects the routes of tests/sdk/gateway_bedrock.toml: `us.anthropic.claude-sonnet-4-6` passed
through to a simulated Bedrock, `us.anthropic.claude-haiku-4-5-20251001-v1:0` on a Bedrock target
that is down, failing over to a simulated Anthropic. Prints one line per check; exits non-zero if
any fails.
"""

import json
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

if len(sys.argv) != 2:
    sys.exit(__doc__)
BASE = sys.argv[1].rstrip("/")
PASSED = "us.anthropic.claude-sonnet-4-6"
FAILOVER = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
CLIENT = boto3.client(
    "bedrock-runtime",
    endpoint_url=BASE,
    region_name="us-east-1",
    aws_access_key_id="AKIDGATEWAY",
    aws_secret_access_key="not-a-real-secret",
    config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
)
MESSAGES = [{"role": "user", "content": [{"text": "Why do circuit breakers half-open?"}]}]
TOOLS = {
    "tools": [
        {
            "toolSpec": {
                "name": "get_weather",
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
    except Exception as e:  # noqa: BLE001 — reported, then the run fails
        failures.append(name)
        print(f"FAIL {name}: {type(e).__name__}: {e}")


def streamed(model, **kwargs):
    response = CLIENT.converse_stream(modelId=model, messages=kwargs.pop("messages", MESSAGES), **kwargs)
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    return list(response["stream"]), headers


def text_of(events):
    return "".join(
        e["contentBlockDelta"]["delta"].get("text", "") for e in events if "contentBlockDelta" in e
    )


def stream_of(model, provider):
    def run():
        events, headers = streamed(model)
        kinds = [next(iter(e)) for e in events]
        assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"], kinds
        assert text_of(events).strip(), events
        assert events[-2]["messageStop"]["stopReason"] == "end_turn", events[-2]
        usage = events[-1]["metadata"]["usage"]
        assert usage["inputTokens"] > 0 and usage["outputTokens"] > 0, usage
        assert headers.get("x-breakerbox-provider") == provider, headers

    return run


def whole_of(model, provider):
    def run():
        response = CLIENT.converse(modelId=model, messages=MESSAGES)
        assert response["output"]["message"]["content"][0]["text"].strip(), response
        assert response["stopReason"] == "end_turn", response
        assert response["usage"]["outputTokens"] > 0, response
        assert response["ResponseMetadata"]["HTTPHeaders"].get("x-breakerbox-provider") == provider

    return run


def tool_call_of(model):
    def run():
        events, _ = streamed(
            model,
            messages=[{"role": "user", "content": [{"text": "What is the weather in 'Oslo'?"}]}],
            toolConfig=TOOLS,
        )
        start = next(e["contentBlockStart"] for e in events if "contentBlockStart" in e)
        assert start["start"]["toolUse"]["name"] == "get_weather", start
        index = start["contentBlockIndex"]
        pieces = "".join(
            e["contentBlockDelta"]["delta"]["toolUse"]["input"]
            for e in events
            if "contentBlockDelta" in e and e["contentBlockDelta"]["contentBlockIndex"] == index
        )
        assert "location" in json.loads(pieces), pieces
        stop = next(e["messageStop"]["stopReason"] for e in events if "messageStop" in e)
        assert stop == "tool_use", stop

    return run


def unknown_model_is_a_client_error():
    try:
        CLIENT.converse(modelId="anthropic.no-such-route", messages=MESSAGES)
    except ClientError as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404, e.response
        assert e.response["Error"]["Code"] == "ResourceNotFoundException", e.response
        return
    raise AssertionError("an unrouted model was answered")


check("converse_stream passed through to Bedrock", stream_of(PASSED, "bedrock"))
check("converse passed through to Bedrock", whole_of(PASSED, "bedrock"))
check("a tool call passed through", tool_call_of(PASSED))
check("converse_stream: Bedrock down, Anthropic answers in Converse", stream_of(FAILOVER, "anthropic"))
check("converse: Bedrock down, Anthropic answers in Converse", whole_of(FAILOVER, "anthropic"))
check("a tool call translated from Anthropic", tool_call_of(FAILOVER))
check("an unrouted model is ResourceNotFoundException", unknown_model_is_a_client_error)

print(f"{len(failures)} failed" if failures else "all Bedrock gateway checks passed")
sys.exit(1 if failures else 0)
