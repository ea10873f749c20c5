#!/usr/bin/env python3
"""Stream through a running `breakerbox sim` with the official `anthropic` and `openai` clients,
unchanged, and check that each simulated fault surfaces as the exception those clients document.

Usage: check_sdks.py http://127.0.0.1:PORT

Expects the providers of tests/sdk/sim.toml: `anthropic`, `openai` (Chat Completions) and
`responses` (the Responses API), no fault set. Prints one line
per check and exits non-zero if any check fails. Retries are off (max_retries=0), so every fault
reaches the caller as it was sent.
"""

import json
import sys
import urllib.request
import warnings

import anthropic
import openai

# The SDKs warn about retired model names; the simulator answers to any name.
warnings.filterwarnings("ignore", category=DeprecationWarning)

if len(sys.argv) != 2:
    sys.exit(__doc__)
BASE = sys.argv[1].rstrip("/")

# A short timeout, so a simulator that hangs fails the check instead of stalling it.
ANT = anthropic.Anthropic(
    base_url=f"{BASE}/anthropic", api_key="sk-ant-sim", max_retries=0, timeout=30.0
)
OAI = openai.OpenAI(base_url=f"{BASE}/openai/v1", api_key="sk-sim", max_retries=0, timeout=30.0)
RESP = openai.OpenAI(
    base_url=f"{BASE}/responses/v1", api_key="sk-sim", max_retries=0, timeout=30.0
)

WEATHER = {
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "City name"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["location"],
}
HELLO = [{"role": "user", "content": "Why is the sky blue?"}]
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
    request = urllib.request.Request(
        f"{BASE}/_sim/providers/{provider}/fault", data=fault.encode(), method="PUT"
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200, response.status


# --- healthy streams -------------------------------------------------------------------------


def anthropic_text_stream():
    with ANT.messages.stream(model="claude-sonnet-5-5", max_tokens=300, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        message = stream.get_final_message()
    assert text and message.content[0].text == text, (text, message.content)
    assert message.id.startswith("msg_") and message.model == "claude-sonnet-5-5"
    assert message.stop_reason == "end_turn", message.stop_reason
    usage = message.usage
    assert usage.input_tokens > 0 and usage.output_tokens == len(text.split(" ")), usage
    assert stream.response.headers["request-id"].startswith("req_")
    return f"{usage.output_tokens} tokens, input_tokens={usage.input_tokens}"


def anthropic_tool_stream():
    events = ANT.messages.create(
        model="claude-sonnet-5-5",
        max_tokens=300,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[{"name": "get_weather", "description": "Weather", "input_schema": WEATHER}],
        stream=True,
    )
    types, blocks, json_pieces, stop = [], {}, [], None
    for event in events:
        types.append(event.type)
        if event.type == "content_block_start":
            blocks[event.index] = event.content_block
        elif event.type == "content_block_delta" and event.delta.type == "input_json_delta":
            json_pieces.append(event.delta.partial_json)
        elif event.type == "message_delta":
            stop = event.delta.stop_reason
    assert types[0] == "message_start" and types[-1] == "message_stop", types
    tool = blocks[1]
    assert tool.type == "tool_use" and tool.name == "get_weather", tool
    assert tool.id.startswith("toolu_"), tool.id
    arguments = json.loads("".join(json_pieces))
    assert isinstance(arguments["location"], str), arguments
    assert stop == "tool_use", stop
    return f"tool_use {tool.name}({json.dumps(arguments)})"


def anthropic_tool_final_message():
    with ANT.messages.stream(
        model="claude-sonnet-5-5",
        max_tokens=300,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[{"name": "get_weather", "input_schema": WEATHER}],
    ) as stream:
        message = stream.get_final_message()
    kinds = [block.type for block in message.content]
    assert kinds == ["text", "tool_use"], kinds
    assert message.content[1].input["unit"] == "celsius", message.content[1].input
    return f"content {kinds}, input {message.content[1].input}"


def anthropic_not_streamed():
    message = ANT.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HELLO)
    assert message.model == "claude-haiku-4-5"
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 5, message
    return f"{message.content[0].text!r}"


def openai_text_stream():
    stream = OAI.chat.completions.create(
        model="gpt-6.2-sol",
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage, ids = "", None, None, set()
    for chunk in stream:
        ids.add(chunk.id)
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert len(ids) == 1 and next(iter(ids)).startswith("chatcmpl-"), ids
    assert text and finish == "stop", (text, finish)
    assert usage.completion_tokens == len(text.split(" ")), usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, usage
    assert usage.prompt_tokens_details.cached_tokens == 0, usage
    return f"{usage.completion_tokens} tokens, prompt_tokens={usage.prompt_tokens}"


def openai_tool_stream():
    stream = OAI.chat.completions.create(
        model="gpt-6.2-sol",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}],
        stream=True,
        stream_options={"include_usage": True},
    )
    name, call_id, arguments, finish = None, None, "", None
    for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                name = call.function.name or name
                call_id = call.id or call_id
                arguments += call.function.arguments or ""
            finish = choice.finish_reason or finish
    assert name == "get_weather" and call_id.startswith("call_"), (name, call_id)
    assert finish == "tool_calls", finish
    parsed = json.loads(arguments)
    assert isinstance(parsed["location"], str), parsed
    return f"tool_calls {name}({arguments})"


def openai_not_streamed():
    completion = OAI.chat.completions.create(model="gpt-5-mini", messages=HELLO)
    choice = completion.choices[0]
    assert completion.model == "gpt-5-mini" and choice.finish_reason == "stop"
    assert choice.message.content and completion.usage.completion_tokens > 0
    return f"{completion.usage.completion_tokens} tokens"


def responses_create_stream():
    events = list(
        RESP.responses.create(
            model="gpt-6.2-sol", input="Why is the sky blue?", instructions="Be terse.", stream=True
        )
    )
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"], types
    assert types[-1] == "response.completed", types
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response
    assert final.id == events[0].response.id and final.id.startswith("resp_"), final.id
    assert final.status == "completed" and final.output_text == text, (final.status, text)
    usage = final.usage
    assert usage.output_tokens == len(text.split(" ")), usage
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens, usage
    assert usage.input_tokens_details.cached_tokens == 0, usage
    return f"{len(events)} events, {usage.output_tokens} tokens"


def responses_stream_helper():
    with RESP.responses.stream(
        model="gpt-6.2-sol", input=[{"role": "user", "content": "Why is the sky blue?"}]
    ) as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text and final.output_text == text, (text, final.output_text)
    return f"{final.usage.output_tokens} tokens"


def responses_tool_call():
    tools = [{"type": "function", "name": "get_weather", "parameters": WEATHER, "strict": False}]
    with RESP.responses.stream(model="gpt-6.2-sol", input="Weather in Paris?", tools=tools) as stream:
        pieces = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
        final = stream.get_final_response()
    call = final.output[0]
    assert call.type == "function_call" and call.name == "get_weather", call
    assert call.call_id.startswith("call_") and call.arguments == "".join(pieces), call
    arguments = json.loads(call.arguments)
    assert isinstance(arguments["location"], str), arguments
    # The function's output sent back: the model answers in words.
    answer = RESP.responses.create(
        model="gpt-6.2-sol",
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "18C"},
        ],
        tools=tools,
    )
    assert answer.output[0].type == "message" and answer.output_text, answer.output
    return f"function_call {call.name}({call.arguments}), then {len(answer.output_text)} chars"


def responses_not_streamed():
    response = RESP.responses.create(model="gpt-5-mini", input="Hello", max_output_tokens=5)
    assert response.model == "gpt-5-mini" and response.status == "incomplete", response.status
    assert response.incomplete_details.reason == "max_output_tokens", response.incomplete_details
    assert response.usage.output_tokens == 5 and response.output_text, response.usage
    return f"{response.output_text!r}"


# --- faults ----------------------------------------------------------------------------------


def anthropic_stream_text():
    with ANT.messages.stream(model="claude-sonnet-5-5", max_tokens=300, messages=HELLO) as stream:
        return "".join(stream.text_stream)


def openai_stream_text():
    stream = OAI.chat.completions.create(
        model="gpt-6.2-sol", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    return "".join(c.delta.content or "" for chunk in stream for c in chunk.choices)


def responses_stream_text():
    with RESP.responses.stream(model="gpt-6.2-sol", input="Why is the sky blue?") as stream:
        return "".join(e.delta for e in stream if e.type == "response.output_text.delta")


def responses_mid_stream_failure():
    """A stream that fails midway ends with `response.failed`, never `response.completed`."""
    set_fault("responses", "mid_stream_error:after=3")
    try:
        with RESP.responses.stream(model="gpt-6.2-sol", input="Why is the sky blue?") as stream:
            events = list(stream)
            try:
                stream.get_final_response()
            except RuntimeError as e:
                incomplete = str(e)
            else:
                raise AssertionError("a final response after response.failed")
    finally:
        set_fault("responses", "none")
    types = [e.type for e in events]
    assert types[-1] == "response.failed" and "response.completed" not in types, types
    assert types.count("response.output_text.delta") == 3, types
    failed = events[-1].response
    assert failed.status == "failed" and failed.error.code == "server_error", failed.error
    assert failed.id == events[0].response.id
    return f"response.failed {failed.error.code}: {failed.error.message!r}; {incomplete}"


def raises(provider, fault, call, expected, inspect=None):
    """Set `fault`, expect `call` to raise `expected`, clear the fault."""

    def run():
        set_fault(provider, fault)
        try:
            call()
        except expected as e:
            detail = inspect(e) if inspect else None
            status = getattr(e, "status_code", None)
            return f"{type(e).__name__}" + (f" {status}" if status else "") + (
                f", {detail}" if detail else ""
            )
        finally:
            set_fault(provider, "none")
        raise AssertionError(f"no exception; expected {expected}")

    return run


def retry_after(e):
    assert e.response.headers["retry-after"] == "2", dict(e.response.headers)
    return f"retry-after {e.response.headers['retry-after']}"


def status(expected):
    def inspect(e):
        assert e.status_code == expected, e.status_code
        return None

    return inspect


def body_code(expected):
    def inspect(e):
        assert e.code == expected, e.code
        return f"code {e.code}"

    return inspect


ANT_OVERLOADED = getattr(anthropic, "OverloadedError", anthropic.APIStatusError)

CHECKS = [
    ("anthropic: messages.stream text + usage", anthropic_text_stream),
    ("anthropic: messages.create(stream=True) tool call", anthropic_tool_stream),
    ("anthropic: messages.stream tool call final message", anthropic_tool_final_message),
    ("anthropic: messages.create not streamed", anthropic_not_streamed),
    ("openai: chat.completions stream text + usage", openai_text_stream),
    ("openai: chat.completions stream tool call", openai_tool_stream),
    ("openai: chat.completions not streamed", openai_not_streamed),
    ("openai: responses.create(stream=True) text + usage", responses_create_stream),
    ("openai: responses.stream() text + final response", responses_stream_helper),
    ("openai: responses.stream() function call, then its output", responses_tool_call),
    ("openai: responses.create not streamed, max_output_tokens", responses_not_streamed),
    (
        "anthropic: rate_limit -> RateLimitError",
        raises("anthropic", "rate_limit", anthropic_stream_text, anthropic.RateLimitError, retry_after),
    ),
    (
        "anthropic: overloaded (529) -> OverloadedError / APIStatusError 529",
        raises("anthropic", "overloaded", anthropic_stream_text, ANT_OVERLOADED, status(529)),
    ),
    (
        "anthropic: server_error -> InternalServerError",
        raises("anthropic", "server_error", anthropic_stream_text, anthropic.InternalServerError),
    ),
    (
        "anthropic: mid_stream_error -> APIStatusError",
        raises("anthropic", "mid_stream_error:after=3", anthropic_stream_text, anthropic.APIStatusError),
    ),
    (
        "anthropic: auth -> AuthenticationError",
        raises("anthropic", "auth", anthropic_stream_text, anthropic.AuthenticationError),
    ),
    (
        "anthropic: context_length -> BadRequestError",
        raises("anthropic", "context_length", anthropic_stream_text, anthropic.BadRequestError),
    ),
    (
        "anthropic: reset -> APIConnectionError",
        raises("anthropic", "reset", anthropic_stream_text, anthropic.APIConnectionError),
    ),
    (
        "openai: rate_limit -> RateLimitError",
        raises("openai", "rate_limit", openai_stream_text, openai.RateLimitError, retry_after),
    ),
    (
        "openai: quota -> RateLimitError insufficient_quota",
        raises("openai", "quota", openai_stream_text, openai.RateLimitError, body_code("insufficient_quota")),
    ),
    (
        "openai: overloaded (503) -> InternalServerError",
        raises("openai", "overloaded", openai_stream_text, openai.InternalServerError, status(503)),
    ),
    (
        "openai: mid_stream_error -> APIError",
        raises("openai", "mid_stream_error:after=3", openai_stream_text, openai.APIError),
    ),
    (
        "openai: auth -> AuthenticationError",
        raises("openai", "auth", openai_stream_text, openai.AuthenticationError, body_code("invalid_api_key")),
    ),
    (
        "openai: context_length -> BadRequestError",
        raises(
            "openai",
            "context_length",
            openai_stream_text,
            openai.BadRequestError,
            body_code("context_length_exceeded"),
        ),
    ),
    (
        "openai: reset -> APIConnectionError",
        raises("openai", "reset", openai_stream_text, openai.APIConnectionError),
    ),
    (
        "openai responses: rate_limit -> RateLimitError",
        raises("responses", "rate_limit", responses_stream_text, openai.RateLimitError, retry_after),
    ),
    (
        "openai responses: overloaded (503) -> InternalServerError",
        raises("responses", "overloaded", responses_stream_text, openai.InternalServerError, status(503)),
    ),
    (
        "openai responses: quota -> RateLimitError insufficient_quota",
        raises("responses", "quota", responses_stream_text, openai.RateLimitError, body_code("insufficient_quota")),
    ),
    (
        "openai responses: context_length -> BadRequestError",
        raises(
            "responses",
            "context_length",
            responses_stream_text,
            openai.BadRequestError,
            body_code("context_length_exceeded"),
        ),
    ),
    ("openai responses: mid_stream_error -> response.failed", responses_mid_stream_failure),
]

print(f"anthropic {anthropic.__version__}, openai {openai.__version__}, simulator {BASE}")
for name, run in CHECKS:
    check(name, run)
print(f"{len(CHECKS) - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
