#!/usr/bin/env python3
"""Stream through breakerbox with the official `google-genai` client, unchanged.

Usage: check_gemini.py sim http://127.0.0.1:PORT      (a `breakerbox sim` with a provider `gemini`)
       check_gemini.py gateway http://127.0.0.1:PORT  (a `breakerbox serve --demo` whose route
                                                       `gemini-*` goes to `gemini`, then `anthropic`)

Against the simulator: generate_content_stream and generate_content, a function call and its
response, and each fault as the exception the client documents (errors.ClientError /
errors.ServerError with Google's code, status and details; a blocked prompt as prompt_feedback).
Through the gateway: the same calls answered by the Gemini target (passed through) and, with it
failing, by Anthropic (translated into Gemini's shapes), and Google's error when all fail.
Retries are off (attempts=1), so every fault reaches the caller as it was sent. Prints one line
per check and exits non-zero if any check fails.
"""

import json
import sys
import urllib.request

from google import genai
from google.genai import errors, types

if len(sys.argv) != 3 or sys.argv[1] not in ("sim", "gateway"):
    sys.exit(__doc__)
MODE, BASE = sys.argv[1], sys.argv[2].rstrip("/")
MODEL = "gemini-2.5-flash"

CLIENT = genai.Client(
    api_key="sim-gemini-key",
    http_options=types.HttpOptions(
        base_url=f"{BASE}/gemini" if MODE == "sim" else BASE,
        retry_options=types.HttpRetryOptions(attempts=1),
        timeout=30_000,
    ),
)
WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="The weather in a city",
            parameters_json_schema={
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        )
    ]
)
NO_AUTO = types.AutomaticFunctionCallingConfig(disable=True)
failures = []


def check(name, run):
    try:
        detail = run()
    except Exception as e:  # a failed check, whatever it raised
        failures.append(name)
        print(f"FAIL {name}: {type(e).__name__}: {e}")
    else:
        print(f"ok   {name}" + (f": {detail}" if detail else ""))


def set_fault(provider, fault):
    if MODE == "sim":
        url, data, headers = f"{BASE}/_sim/providers/{provider}/fault", fault.encode(), {}
        method = "PUT"
    else:
        url = f"{BASE}/control"
        data = json.dumps({"action": "set_fault", "provider": provider, "fault": fault}).encode()
        headers, method = {"content-type": "application/json"}, "POST"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200, response.status


def with_fault(provider, fault, run):
    set_fault(provider, fault)
    try:
        return run()
    finally:
        set_fault(provider, "none")


# --- replies ---------------------------------------------------------------------------------


def stream_text(expect_finish="STOP"):
    chunks = list(
        CLIENT.models.generate_content_stream(model=MODEL, contents="Why is the sky blue?")
    )
    text = "".join(c.text or "" for c in chunks)
    assert len(chunks) > 2 and len(text.split()) > 3, (len(chunks), text)
    last = chunks[-1]
    assert last.candidates[0].finish_reason == types.FinishReason(expect_finish), last
    usage = last.usage_metadata
    assert usage.prompt_token_count > 0 and usage.candidates_token_count > 0, usage
    return text, chunks


def streamed():
    text, chunks = stream_text()
    return f"{len(chunks)} chunks, {len(text.split())} words"


def whole():
    response = CLIENT.models.generate_content(
        model=MODEL,
        contents="Why is the sky blue?",
        config=types.GenerateContentConfig(
            system_instruction="Be brief.", max_output_tokens=400, temperature=0.2
        ),
    )
    assert response.text and len(response.text.split()) > 3, response
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.usage_metadata.total_token_count > 0, response.usage_metadata
    return f"{len(response.text.split())} words"


def same_reply_streamed_and_whole():
    text, _ = stream_text()
    response = CLIENT.models.generate_content(model=MODEL, contents="Why is the sky blue?")
    assert response.text == text, (response.text, text)


def function_call_round_trip():
    ask = types.Content(role="user", parts=[types.Part(text="What's the weather in `Paris`?")])
    config = types.GenerateContentConfig(tools=[WEATHER], automatic_function_calling=NO_AUTO)
    response = CLIENT.models.generate_content(model=MODEL, contents=[ask], config=config)
    calls = response.function_calls
    assert calls and calls[0].name == "get_weather", response
    assert calls[0].args.get("city") == "Paris", calls[0].args
    answer = types.Part.from_function_response(name="get_weather", response={"output": "sunny"})
    follow = [ask, response.candidates[0].content, types.Content(role="user", parts=[answer])]
    chunks = list(
        CLIENT.models.generate_content_stream(model=MODEL, contents=follow, config=config)
    )
    text = "".join(c.text or "" for c in chunks)
    assert text and not any(c.function_calls for c in chunks), chunks
    return f"{calls[0].name}({calls[0].args}) then {len(text.split())} words"


def streamed_function_call():
    config = types.GenerateContentConfig(tools=[WEATHER], automatic_function_calling=NO_AUTO)
    chunks = list(
        CLIENT.models.generate_content_stream(
            model=MODEL, contents="Weather in `Oslo`? Use get_weather", config=config
        )
    )
    calls = [call for c in chunks for call in (c.function_calls or [])]
    assert len(calls) == 1 and calls[0].args == {"city": "Oslo"}, calls


# --- faults ----------------------------------------------------------------------------------


def raises(kind, code, status, run):
    try:
        run()
    except kind as e:
        assert e.code == code and e.status == status, (e.code, e.status, e.message)
        return e
    raise AssertionError(f"no {kind.__name__}")


def whole_call():
    return CLIENT.models.generate_content(model=MODEL, contents="hi")


def stream_call():
    return list(CLIENT.models.generate_content_stream(model=MODEL, contents="hi"))


def rate_limited():
    for call in (whole_call, stream_call):
        e = with_fault(
            "gemini",
            "rate_limit:retry_after=3s",
            lambda: raises(errors.ClientError, 429, "RESOURCE_EXHAUSTED", call),
        )
        retry = [d for d in e.details["error"]["details"] if d["@type"].endswith("RetryInfo")]
        assert retry and retry[0]["retryDelay"] == "3s", e.details


def overloaded():
    with_fault("gemini", "overloaded", lambda: raises(errors.ServerError, 503, "UNAVAILABLE", stream_call))


def server_error():
    with_fault("gemini", "server_error", lambda: raises(errors.ServerError, 500, "INTERNAL", whole_call))


def bad_key():
    e = with_fault("gemini", "auth", lambda: raises(errors.ClientError, 400, "INVALID_ARGUMENT", whole_call))
    assert "API key not valid" in e.message, e.message


def blocked_prompt():
    def run():
        response = whole_call()
        assert response.prompt_feedback.block_reason == types.BlockedReason.SAFETY, response
        assert not response.candidates and response.text is None
        chunks = stream_call()
        assert len(chunks) == 1 and chunks[0].prompt_feedback.block_reason == "SAFETY", chunks

    with_fault("gemini", "content_filter", run)


def mid_stream_error():
    def run():
        seen = []
        try:
            for chunk in CLIENT.models.generate_content_stream(model=MODEL, contents="hi"):
                seen.append(chunk)
        except errors.ServerError as e:
            assert e.code == 503 and e.status == "UNAVAILABLE", e
            assert len(seen) == 3, seen
            return
        raise AssertionError("the stream ended without the error")

    with_fault("gemini", "mid_stream_error:after=3", run)


# --- through the gateway ---------------------------------------------------------------------


def failed_over_to_anthropic():
    def run():
        text, _ = stream_text()
        response = CLIENT.models.generate_content(model=MODEL, contents="Why is the sky blue?")
        assert response.text == text, (response.text, text)
        function_call_round_trip()
        return f"{len(text.split())} words from anthropic"

    return with_fault("gemini", "overloaded", run)


def cut_after_text():
    """Anthropic cut mid-reply (Gemini overloaded): the stream ends in Google's error payload,
    which the client raises mid-iteration, after the words it already has (never a clean end)."""

    def run():
        seen = []
        try:
            for chunk in CLIENT.models.generate_content_stream(model=MODEL, contents="hi"):
                seen.append(chunk.text or "")
        except errors.ServerError as e:
            # The engine's last word: the cut, or (restarting on Gemini, overloaded) that.
            assert (e.code, e.status) in ((500, "INTERNAL"), (503, "UNAVAILABLE")), e
            assert "".join(seen).strip(), seen
            return f"ServerError {e.code} {e.status} after {len(seen)} chunks"
        raise AssertionError(f"the stream finished cleanly after {len(seen)} chunks")

    set_fault("anthropic", "stream_cut:after=5")
    try:
        return with_fault("gemini", "overloaded", run)
    finally:
        set_fault("anthropic", "none")


def all_down():
    set_fault("anthropic", "rate_limit:retry_after=3s")
    try:
        e = with_fault(
            "gemini",
            "rate_limit:retry_after=3s",
            lambda: raises(errors.ClientError, 429, "RESOURCE_EXHAUSTED", stream_call),
        )
        assert "RetryInfo" in json.dumps(e.details), e.details
    finally:
        set_fault("anthropic", "none")


check("generate_content_stream", streamed)
check("generate_content", whole)
check("the same reply streamed and whole", same_reply_streamed_and_whole)
check("a function call and its response", function_call_round_trip)
check("a streamed function call", streamed_function_call)
if MODE == "sim":
    check("rate_limit: ClientError 429 with RetryInfo", rate_limited)
    check("overloaded: ServerError 503", overloaded)
    check("server_error: ServerError 500", server_error)
    check("auth: ClientError 400, API key not valid", bad_key)
    check("content_filter: prompt_feedback.block_reason", blocked_prompt)
    check("mid_stream_error: ServerError mid-stream", mid_stream_error)
else:
    check("gemini overloaded: anthropic answers in Gemini's shapes", failed_over_to_anthropic)
    check("anthropic cut after text: ServerError mid-stream", cut_after_text)
    check("every target down: ClientError 429 with RetryInfo", all_down)

print(f"{len(failures)} failed" if failures else "all passed")
sys.exit(1 if failures else 0)
