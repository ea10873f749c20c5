#!/usr/bin/env python3
"""The official `openai.AzureOpenAI` client, unchanged, against the simulator's Azure provider and
through the gateway's Azure paths: streamed and not, on a deployment's path and the v1 path, and
the simulator's faults as the exceptions the client documents.

Usage: check_azure.py SIM_ROOT GATEWAY TOKEN
  SIM_ROOT  the simulator's shared port (http://127.0.0.1:P), with a provider `azure`
            (protocol = "azure") and no fault set
  GATEWAY   the gateway (http://127.0.0.1:P), whose route `prod-4o` starts with an Azure target
  TOKEN     the gateway's token, sent as the client's api-key

Prints one line per check and exits non-zero if any check fails. Retries are off.
"""

import json
import sys
import urllib.request

import openai

if len(sys.argv) != 4:
    sys.exit(__doc__)
SIM, GATEWAY, TOKEN = sys.argv[1].rstrip("/"), sys.argv[2].rstrip("/"), sys.argv[3]
VERSION = "2024-10-21"
HELLO = [{"role": "user", "content": "Why is the sky blue?"}]
MODEL = "gpt-6.2-sol"  # the simulated deployment's real model
failures = []


def check(name, run):
    try:
        detail = run()
    except Exception as e:  # a failed check, whatever it raised
        failures.append(name)
        print(f"FAIL {name}: {type(e).__name__}: {e}")
    else:
        print(f"ok   {name}" + (f": {detail}" if detail else ""))


def set_fault(fault):
    request = urllib.request.Request(
        f"{SIM}/_sim/providers/azure/fault", data=fault.encode(), method="PUT"
    )
    urllib.request.urlopen(request, timeout=10).read()


def azure(endpoint, key, **kw):
    return openai.AzureOpenAI(
        azure_endpoint=endpoint, api_key=key, api_version=VERSION, max_retries=0, timeout=30.0, **kw
    )


def streamed(client, model):
    stream = client.chat.completions.create(
        model=model, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    text, models, usage, finish = "", set(), None, None
    for chunk in stream:
        # Azure's first chunk (the prompt's filter results) has an empty model and no choices.
        if chunk.model:
            models.add(chunk.model)
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
        usage = chunk.usage or usage
    assert text, "no text"
    assert models == {MODEL}, models
    assert finish == "stop", finish
    assert usage and usage.completion_tokens > 0, usage
    return f"{len(text)} chars, model {MODEL}, {usage.completion_tokens} tokens"


def whole(client, model):
    completion = client.chat.completions.create(model=model, messages=HELLO)
    content = completion.choices[0].message.content
    assert content, completion
    assert completion.model == MODEL, completion.model
    extra = completion.model_extra or {}
    assert "prompt_filter_results" in extra, extra.keys()
    return f"{len(content)} chars"


def raises(fault, expected, inspect):
    def run():
        set_fault(fault)
        try:
            azure(f"{SIM}/azure", "az-key").chat.completions.create(model="prod-4o", messages=HELLO)
        except expected as e:
            return inspect(e)
        finally:
            set_fault("none")
        raise AssertionError(f"no {expected.__name__}")

    return run


def rate_limited(e):
    assert e.status_code == 429
    assert e.response.headers["x-ms-retry-after-ms"] == "1500"
    assert e.body["code"] == "429", e.body
    return e.body["message"][:40]


def filtered(e):
    assert e.status_code == 400 and e.code == "content_filter", (e.status_code, e.code)
    result = e.body["innererror"]["content_filter_result"]
    assert result["violence"]["filtered"] is True, result
    return "innererror.content_filter_result.violence filtered"


sim = azure(f"{SIM}/azure", "az-key")
check("sim: deployment path, streamed", lambda: streamed(sim, "prod-4o"))
check("sim: deployment path, whole", lambda: whole(sim, "prod-4o"))
check(
    "sim: azure_deployment, streamed",
    lambda: streamed(azure(f"{SIM}/azure", "az-key", azure_deployment="prod-4o"), "x"),
)
v1 = openai.OpenAI(base_url=f"{SIM}/azure/openai/v1", api_key="az-key", max_retries=0)
check("sim: v1 path, streamed", lambda: streamed(v1, "prod-4o"))
check(
    "sim: rate_limit as RateLimitError",
    raises("rate_limit:retry_after=1500ms", openai.RateLimitError, rate_limited),
)
check(
    "sim: content_filter as BadRequestError",
    raises("content_filter", openai.BadRequestError, filtered),
)
check(
    "sim: auth as AuthenticationError",
    raises("auth", openai.AuthenticationError, lambda e: e.body["code"]),
)
check(
    "sim: overloaded as InternalServerError",
    raises("overloaded", openai.InternalServerError, lambda e: e.status_code),
)

gw = azure(GATEWAY, TOKEN)
check("gateway: deployment path, streamed", lambda: streamed(gw, "prod-4o"))
check("gateway: deployment path, whole", lambda: whole(gw, "prod-4o"))
gw_v1 = openai.OpenAI(base_url=f"{GATEWAY}/openai/v1", api_key=TOKEN, max_retries=0)
check("gateway: v1 path, streamed", lambda: streamed(gw_v1, "prod-4o"))


def wrong_token():
    try:
        azure(GATEWAY, "not-the-token").chat.completions.create(model="prod-4o", messages=HELLO)
    except openai.AuthenticationError as e:
        return e.body["code"]
    raise AssertionError("accepted a wrong token")


check("gateway: a wrong api-key as AuthenticationError", wrong_token)

if failures:
    print(f"{len(failures)} check(s) failed: {json.dumps(failures)}")
    sys.exit(1)
print("all Azure checks passed")
