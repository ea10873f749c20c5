#!/usr/bin/env python3
"""Talk to a running `breakerbox serve --demo` gateway with the official `anthropic` and `openai`
clients, unchanged, and check that each gets a valid reply (or the exception it documents) in its
own protocol, whichever provider answered.

Usage: check_gateway.py http://127.0.0.1:PORT

Expects the demo gateway: the route `default` over the chain anthropic → openai (both simulated,
no fault set). Faults and breakers are set through the gateway's `/control` and cleared after
every check. Prints one line per check and exits non-zero if any check fails.
"""

import json
import sys
import time
import urllib.request
import warnings

import anthropic
import openai

# The SDKs warn about retired model names; the gateway routes on any name.
warnings.filterwarnings("ignore", category=DeprecationWarning)

if len(sys.argv) != 2:
    sys.exit(__doc__)
BASE = sys.argv[1].rstrip("/")
ROUTE = "default"
# A route whose first target speaks the Responses API: a Responses client's same-protocol path.
SAME = "resp"

# As an agent would set them: ANTHROPIC_BASE_URL=BASE, OPENAI_BASE_URL=BASE/v1, any key. The
# healthy checks keep the clients' own retries; where a failure is expected, none, so that the
# failure reaches the caller as the gateway sent it. A short timeout: a hang fails, not stalls.
ANT = anthropic.Anthropic(base_url=BASE, api_key="sk-ant-anything", timeout=30.0)
OAI = openai.OpenAI(base_url=f"{BASE}/v1", api_key="sk-anything", timeout=30.0)
ANT0 = ANT.with_options(max_retries=0)
OAI0 = OAI.with_options(max_retries=0)

WEATHER = {
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "City name"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["location"],
}
ANT_TOOLS = [{"name": "get_weather", "description": "Current weather", "input_schema": WEATHER}]
OAI_TOOLS = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "Current weather", "parameters": WEATHER},
    }
]
HELLO = [{"role": "user", "content": "Why is the sky blue?"}]
ASK_WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]
failures = []


# --- the gateway's /control ------------------------------------------------------------------


def control(**command):
    request = urllib.request.Request(
        f"{BASE}/control",
        data=json.dumps(command).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.load(response)
    assert response.status == 200 and body.get("ok"), (command, body)


def set_fault(provider, fault):
    control(action="set_fault", provider=provider, fault=fault)


def trip(provider):
    control(action="trip", provider=provider)


def clean():
    """No fault, every breaker closed: what each check starts from."""
    for provider in ("anthropic", "openai"):
        set_fault(provider, "none")
        control(action="reset", provider=provider)


def check(name, run):
    started = time.monotonic()
    try:
        detail = run()
    except Exception as e:  # a failed check, whatever it raised
        failures.append(name)
        print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
    else:
        ms = (time.monotonic() - started) * 1000
        print(f"ok   {name}" + (f": {detail}" if detail else "") + f" [{ms:.0f} ms]", flush=True)
    finally:
        try:
            clean()
        except Exception as e:
            failures.append(f"{name} (cleanup)")
            print(f"FAIL {name}: cleanup: {type(e).__name__}: {e}", flush=True)


def with_faults(faults, run):
    """`run` with `faults` ({provider: fault}) set first; `check` clears them."""

    def wrapped():
        for provider, fault in faults.items():
            set_fault(provider, fault)
        return run()

    return wrapped


def with_tripped(provider, run):
    def wrapped():
        trip(provider)
        return run()

    return wrapped


def expect_model(model, answered_by):
    # `responses`: the simulated Responses API provider, whose model is gpt-5 too.
    if answered_by == "anthropic":
        assert model.startswith("claude"), f"model {model!r}: expected anthropic's (claude-…)"
    else:
        assert model == "gpt-5", f"model {model!r}: expected openai's gpt-5"


# --- OpenAI client ---------------------------------------------------------------------------


def openai_stream(answered_by):
    def run():
        stream = OAI.chat.completions.create(
            model=ROUTE,
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},
        )
        text, finish, usage, ids, models = "", None, None, set(), set()
        for chunk in stream:
            ids.add(chunk.id)
            models.add(chunk.model)
            assert chunk.object == "chat.completion.chunk", chunk.object
            if chunk.usage:
                assert not chunk.choices, "the usage chunk has choices: []"
                usage = chunk.usage
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finish = choice.finish_reason or finish
        assert len(ids) == 1, f"chunk ids differ: {ids}"
        assert len(models) == 1, f"chunk models differ: {models}"
        model = models.pop()
        expect_model(model, answered_by)
        assert text.strip(), "no text"
        assert finish == "stop", f"finish_reason {finish!r}"
        assert usage is not None, "no usage chunk despite include_usage"
        assert usage.completion_tokens > 0 and usage.prompt_tokens > 0, usage
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, usage
        return f"{model}, {len(text.split())} words, usage {usage.prompt_tokens}+{usage.completion_tokens}"

    return run


def openai_whole(answered_by):
    def run():
        completion = OAI.chat.completions.create(model=ROUTE, messages=HELLO)
        choice = completion.choices[0]
        expect_model(completion.model, answered_by)
        assert completion.object == "chat.completion", completion.object
        assert choice.finish_reason == "stop", choice.finish_reason
        assert choice.message.role == "assistant" and choice.message.content.strip(), choice.message
        assert not choice.message.tool_calls, choice.message.tool_calls
        usage = completion.usage
        assert usage.completion_tokens > 0 and usage.prompt_tokens > 0, usage
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, usage
        assert completion._request_id, "no x-request-id"
        return f"{completion.model}, id {completion.id}, usage {usage.prompt_tokens}+{usage.completion_tokens}"

    return run


def openai_tool_stream(answered_by):
    def run():
        stream = OAI.chat.completions.create(
            model=ROUTE,
            messages=ASK_WEATHER,
            tools=OAI_TOOLS,
            stream=True,
            stream_options={"include_usage": True},
        )
        calls, finish, usage, models = {}, None, None, set()
        for chunk in stream:
            models.add(chunk.model)
            usage = chunk.usage or usage
            for choice in chunk.choices:
                for call in choice.delta.tool_calls or []:
                    entry = calls.setdefault(call.index, {"id": None, "name": None, "arguments": ""})
                    if call.id:
                        assert entry["id"] is None, f"tool call {call.index} got a second id"
                        entry["id"] = call.id
                    if call.function and call.function.name:
                        entry["name"] = call.function.name
                    if call.function and call.function.arguments:
                        entry["arguments"] += call.function.arguments
                finish = choice.finish_reason or finish
        expect_model(models.pop(), answered_by)
        assert list(calls) == [0], f"tool call indices {list(calls)}"
        call = calls[0]
        assert call["name"] == "get_weather" and call["id"], call
        arguments = json.loads(call["arguments"])
        assert isinstance(arguments.get("location"), str), arguments
        assert finish == "tool_calls", f"finish_reason {finish!r}"
        assert usage is not None and usage.completion_tokens > 0, usage
        return f"tool_calls {call['name']}({call['arguments']}) id {call['id']}"

    return run


def openai_tool_whole(answered_by):
    def run():
        completion = OAI.chat.completions.create(model=ROUTE, messages=ASK_WEATHER, tools=OAI_TOOLS)
        choice = completion.choices[0]
        expect_model(completion.model, answered_by)
        assert choice.finish_reason == "tool_calls", choice.finish_reason
        calls = choice.message.tool_calls
        assert calls and len(calls) == 1, calls
        call = calls[0]
        assert call.type == "function" and call.function.name == "get_weather" and call.id, call
        arguments = json.loads(call.function.arguments)
        assert isinstance(arguments.get("location"), str), arguments
        return f"tool_calls {call.function.name}({call.function.arguments}) id {call.id}"

    return run


def openai_tool_round_trip(answered_by):
    """The agent loop: a tool call, its result sent back, then an answer in words."""

    def run():
        first = OAI.chat.completions.create(model=ROUTE, messages=ASK_WEATHER, tools=OAI_TOOLS)
        call = first.choices[0].message.tool_calls[0]
        messages = ASK_WEATHER + [
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21, "sky": "clear"}'},
        ]
        second = OAI.chat.completions.create(model=ROUTE, messages=messages, tools=OAI_TOOLS)
        choice = second.choices[0]
        expect_model(second.model, answered_by)
        assert choice.finish_reason == "stop", choice.finish_reason
        assert choice.message.content and not choice.message.tool_calls, choice.message
        return f"{call.function.name} → {len(choice.message.content.split())} words"

    return run


def openai_tool_choice_none(answered_by):
    """`tool_choice: "none"`: the tools are offered, but the model must answer in words."""

    def run():
        completion = OAI.chat.completions.create(
            model=ROUTE, messages=ASK_WEATHER, tools=OAI_TOOLS, tool_choice="none"
        )
        choice = completion.choices[0]
        expect_model(completion.model, answered_by)
        assert not choice.message.tool_calls, f"a tool call despite tool_choice none: {choice.message.tool_calls}"
        assert choice.finish_reason == "stop", choice.finish_reason
        assert choice.message.content, choice.message
        return f"{len(choice.message.content.split())} words, no tool call"

    return run


def openai_length(answered_by):
    def run():
        completion = OAI.chat.completions.create(
            model=ROUTE, messages=HELLO, max_completion_tokens=5
        )
        choice = completion.choices[0]
        expect_model(completion.model, answered_by)
        assert choice.finish_reason == "length", choice.finish_reason
        assert completion.usage.completion_tokens == 5, completion.usage
        return f"finish_reason length after {completion.usage.completion_tokens} tokens"

    return run


def openai_models():
    names = [m.id for m in OAI.models.list()]
    assert ROUTE in names, names
    return f"models {names}"


# --- Anthropic client ------------------------------------------------------------------------


def anthropic_whole(answered_by):
    def run():
        message = ANT.messages.create(model=ROUTE, max_tokens=300, messages=HELLO)
        expect_model(message.model, answered_by)
        assert message.type == "message" and message.role == "assistant", message
        kinds = [block.type for block in message.content]
        assert kinds == ["text"], kinds
        assert message.content[0].text.strip(), "no text"
        assert message.stop_reason == "end_turn", message.stop_reason
        assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0, message.usage
        return f"{message.model}, id {message.id}, usage {message.usage.input_tokens}+{message.usage.output_tokens}"

    return run


def anthropic_stream(answered_by):
    def run():
        with ANT.messages.stream(model=ROUTE, max_tokens=300, messages=HELLO) as stream:
            text = "".join(stream.text_stream)
            message = stream.get_final_message()
            request_id = stream.response.headers.get("request-id")
        expect_model(message.model, answered_by)
        assert text.strip(), "no text"
        assert [b.type for b in message.content] == ["text"], message.content
        assert message.content[0].text == text, (text, message.content)
        assert message.stop_reason == "end_turn", message.stop_reason
        assert message.usage.input_tokens > 0, message.usage
        assert message.usage.output_tokens > 0, message.usage
        assert request_id, "no request-id header"
        return f"{message.model}, {len(text.split())} words, usage {message.usage.input_tokens}+{message.usage.output_tokens}"

    return run


def anthropic_raw_events(answered_by):
    """messages.create(stream=True): the event order the protocol promises."""

    def run():
        events = ANT.messages.create(model=ROUTE, max_tokens=300, messages=HELLO, stream=True)
        types, model, stop, usage = [], None, None, None
        for event in events:
            types.append(event.type)
            if event.type == "message_start":
                model = event.message.model
            elif event.type == "message_delta":
                stop, usage = event.delta.stop_reason, event.usage
        expect_model(model, answered_by)
        assert types[0] == "message_start" and types[-1] == "message_stop", types
        assert types[-2] == "message_delta", types
        assert "content_block_start" in types and "content_block_stop" in types, types
        assert stop == "end_turn" and usage.output_tokens > 0, (stop, usage)
        return f"{len(types)} events, {types[0]} … {types[-1]}"

    return run


def anthropic_tool_whole(answered_by):
    def run():
        message = ANT.messages.create(
            model=ROUTE, max_tokens=300, messages=ASK_WEATHER, tools=ANT_TOOLS
        )
        expect_model(message.model, answered_by)
        tools = [b for b in message.content if b.type == "tool_use"]
        assert len(tools) == 1, message.content
        tool = tools[0]
        assert tool.name == "get_weather" and tool.id, tool
        assert isinstance(tool.input, dict) and isinstance(tool.input.get("location"), str), tool.input
        assert message.stop_reason == "tool_use", message.stop_reason
        return f"content {[b.type for b in message.content]}, {tool.name}({json.dumps(tool.input)}) id {tool.id}"

    return run


def anthropic_tool_stream(answered_by):
    def run():
        with ANT.messages.stream(
            model=ROUTE, max_tokens=300, messages=ASK_WEATHER, tools=ANT_TOOLS
        ) as stream:
            pieces, starts = [], []
            for event in stream:
                if event.type == "content_block_start":
                    starts.append((event.index, event.content_block.type))
                elif event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                    pieces.append(event.delta.partial_json)
            message = stream.get_final_message()
        expect_model(message.model, answered_by)
        indices = [i for i, _ in starts]
        assert indices == list(range(len(starts))), f"block indices {indices}"
        tools = [b for b in message.content if b.type == "tool_use"]
        assert len(tools) == 1, message.content
        tool = tools[0]
        assert tool.name == "get_weather" and tool.id, tool
        streamed = json.loads("".join(pieces))
        assert streamed == tool.input, (streamed, tool.input)
        assert isinstance(tool.input.get("location"), str), tool.input
        assert message.stop_reason == "tool_use", message.stop_reason
        return f"blocks {starts}, {tool.name}({json.dumps(tool.input)})"

    return run


def anthropic_tool_round_trip(answered_by):
    def run():
        first = ANT.messages.create(
            model=ROUTE, max_tokens=300, messages=ASK_WEATHER, tools=ANT_TOOLS
        )
        tool = next(b for b in first.content if b.type == "tool_use")
        messages = ASK_WEATHER + [
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": tool.id,
                        "content": '{"temp_c": 21, "sky": "clear"}',
                    }
                ],
            },
        ]
        second = ANT.messages.create(model=ROUTE, max_tokens=300, messages=messages, tools=ANT_TOOLS)
        expect_model(second.model, answered_by)
        assert second.stop_reason == "end_turn", second.stop_reason
        assert [b.type for b in second.content] == ["text"], second.content
        return f"{tool.name} → {len(second.content[0].text.split())} words"

    return run


def anthropic_tool_choice_none(answered_by):
    def run():
        message = ANT.messages.create(
            model=ROUTE,
            max_tokens=300,
            messages=ASK_WEATHER,
            tools=ANT_TOOLS,
            tool_choice={"type": "none"},
        )
        expect_model(message.model, answered_by)
        kinds = [b.type for b in message.content]
        assert kinds == ["text"], f"content {kinds} despite tool_choice none"
        assert message.stop_reason == "end_turn", message.stop_reason
        return f"{len(message.content[0].text.split())} words, no tool_use"

    return run


def anthropic_max_tokens(answered_by):
    def run():
        message = ANT.messages.create(model=ROUTE, max_tokens=5, messages=HELLO)
        expect_model(message.model, answered_by)
        assert message.stop_reason == "max_tokens", message.stop_reason
        assert message.usage.output_tokens == 5, message.usage
        return f"stop_reason max_tokens after {message.usage.output_tokens} tokens"

    return run


def anthropic_models():
    names = [m.id for m in ANT.models.list()]
    assert ROUTE in names, names
    return f"models {names}"


# --- errors ----------------------------------------------------------------------------------


def raises(call, expected, inspect=None):
    def run():
        try:
            result = call()
        except expected as e:
            detail = inspect(e) if inspect else None
            status = getattr(e, "status_code", None)
            return f"{type(e).__name__}" + (f" {status}" if status else "") + (
                f", {detail}" if detail else ""
            )
        raise AssertionError(f"no exception (got {result!r:.200}); expected {expected}")

    return run


def status_is(expected, retry_after=False, mentions=None):
    def inspect(e):
        assert e.status_code == expected, f"status {e.status_code}, expected {expected}: {e}"
        details = []
        if retry_after:
            value = e.response.headers.get("retry-after")
            assert value is not None, f"no retry-after header: {dict(e.response.headers)}"
            assert int(value) >= 1, value
            details.append(f"retry-after {value}")
        if mentions:
            assert mentions in str(e), f"{str(e)!r} does not mention {mentions!r}"
            details.append(f"message names `{mentions}`")
        return ", ".join(details) or None

    return inspect


def anthropic_stream_text(client=ANT0, messages=HELLO):
    with client.messages.stream(model=ROUTE, max_tokens=300, messages=messages) as stream:
        return "".join(stream.text_stream) + f" [{stream.get_final_message().model}]"


def anthropic_whole_text(client=ANT0, model=ROUTE):
    message = client.messages.create(model=model, max_tokens=300, messages=HELLO)
    return f"{message.content} [{message.model}]"


def openai_stream_text(client=OAI0):
    stream = client.chat.completions.create(
        model=ROUTE, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    return "".join(c.delta.content or "" for chunk in stream for c in chunk.choices)


def openai_whole_text(client=OAI0, model=ROUTE):
    completion = client.chat.completions.create(model=model, messages=HELLO)
    return f"{completion.choices[0].message.content} [{completion.model}]"


def openai_code(expected):
    def inspect(e):
        assert e.status_code == 400, e.status_code
        assert e.code == expected, f"code {e.code!r}, expected {expected!r}"
        return f"code {e.code}"

    return inspect


def until_breakers_open(call, expected):
    """Call until the breakers, opened by the repeated failures, answer for the providers."""

    def run():
        statuses = []
        for _ in range(12):
            try:
                call()
            except expected as e:
                statuses.append(e.status_code)
                if e.status_code == 503:
                    value = e.response.headers.get("retry-after")
                    assert value is not None and int(value) >= 1, (
                        f"503 without retry-after although the breakers say when they half-open: "
                        f"{e}; headers {dict(e.response.headers)}"
                    )
                    return f"{statuses}, then {type(e).__name__} 503 retry-after {value}"
        raise AssertionError(f"the breakers never answered 503: statuses {statuses}")

    return run


def anthropic_cut_stream():
    """A live stream that breaks after text reached the client must end in an error."""
    received = []
    try:
        with ANT0.messages.stream(model=ROUTE, max_tokens=300, messages=HELLO) as stream:
            for text in stream.text_stream:
                received.append(text)
            message = stream.get_final_message()
    except anthropic.APIStatusError as e:
        assert received, "the error came before any text: the cut should be mid-stream"
        assert e.status_code == 200, e.status_code  # an in-stream `event: error`
        return f"{type(e).__name__} after {len(received)} text deltas: {str(e)[:120]}"
    except anthropic.APIError as e:
        assert received, "the error came before any text: the cut should be mid-stream"
        return f"{type(e).__name__} after {len(received)} text deltas: {str(e)[:120]}"
    raise AssertionError(
        f"the stream finished cleanly ({message.stop_reason}, {len(received)} deltas): "
        "a cut reply looked whole"
    )


def openai_cut_stream():
    received = []
    try:
        stream = OAI0.chat.completions.create(
            model=ROUTE, messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
        finish = None
        for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    received.append(choice.delta.content)
                finish = choice.finish_reason or finish
    except openai.APIError as e:
        assert received, "the error came before any text: the cut should be mid-stream"
        return f"{type(e).__name__} after {len(received)} text deltas: {str(e)[:120]}"
    raise AssertionError(
        f"the stream finished cleanly (finish_reason {finish!r}, {len(received)} deltas): "
        "a cut reply looked whole"
    )


# --- per-request control (x-breakerbox-chain, x-breakerbox-failover) ---------------------------

# The chain anthropic → claude-backup, continuing a broken reply on the backup (a prefill).
SPLICED = {"x-breakerbox-chain": "spliced"}
BACKUP_MODEL = "claude-haiku-4-5"


def answered(headers):
    return tuple(headers.get(f"x-breakerbox-{h}") for h in ("provider", "attempts", "failed-over"))


def anthropic_spliced_stream():
    """Cut after five words and continued on the backup: the client reads one whole message;
    the usage counts every word it got, and the headers are as of the first word."""
    with ANT0.messages.stream(
        model=ROUTE, max_tokens=300, messages=HELLO, extra_headers=SPLICED
    ) as stream:
        text = "".join(stream.text_stream)
        message = stream.get_final_message()
        headers = stream.response.headers
    words = len(text.split())
    assert message.stop_reason == "end_turn", message.stop_reason
    assert message.content[0].text == text and words > 5, text
    # The simulated providers spend a token a word.
    assert message.usage.output_tokens >= words, (message.usage, words)
    assert answered(headers) == ("anthropic", "1", "false"), dict(headers)
    return f"{words} words, usage {message.usage.input_tokens}+{message.usage.output_tokens}"


def openai_spliced_stream():
    stream = OAI0.chat.completions.create(
        model=ROUTE,
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=SPLICED,
    )
    text, last, finish = "", None, None
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
        last = chunk
    words = len(text.split())
    assert finish == "stop" and words > 5, (finish, text)
    assert last.model == BACKUP_MODEL, last.model
    assert last.usage.completion_tokens >= words, (last.usage, words)
    return f"{words} words, the usage chunk names {last.model}"


def anthropic_spliced_whole():
    raw = ANT0.messages.with_raw_response.create(
        model=ROUTE, max_tokens=300, messages=HELLO, extra_headers=SPLICED
    )
    message = raw.parse()
    assert message.model == BACKUP_MODEL, message.model
    assert answered(raw.headers) == ("claude-backup", "2", "true"), dict(raw.headers)
    assert raw.headers.get("x-breakerbox-model") == BACKUP_MODEL, dict(raw.headers)
    return f"{message.model}, usage {message.usage.input_tokens}+{message.usage.output_tokens}"


def responses_spliced_stream():
    with OAI0.responses.stream(model=ROUTE, input="Why is the sky blue?", extra_headers=SPLICED) as stream:
        for _ in stream:
            pass
        response = stream.get_final_response()
    assert response.status == "completed", response.status
    assert response.model == BACKUP_MODEL, response.model
    assert response.output_text.strip(), response
    return f"{response.model}, usage {response.usage.input_tokens}+{response.usage.output_tokens}"


def anthropic_failover_off():
    """The primary's own error, from the primary alone (its retries, no fallback attempt)."""
    try:
        ANT0.messages.create(
            model=ROUTE, max_tokens=300, messages=HELLO, extra_headers={"x-breakerbox-failover": "off"}
        )
    except anthropic.InternalServerError as e:
        provider, attempts, failed_over = answered(e.response.headers)
        assert (provider, failed_over) == ("anthropic", "false"), dict(e.response.headers)
        return f"{type(e).__name__} {e.status_code} from anthropic alone, {attempts} attempts"
    raise AssertionError("answered: failover was not off")


def openai_chain_by_header():
    raw = OAI0.chat.completions.with_raw_response.create(
        model=ROUTE, messages=HELLO, extra_headers={"x-breakerbox-chain": "backup-first"}
    )
    completion = raw.parse()
    assert completion.model == BACKUP_MODEL, completion.model
    assert answered(raw.headers) == ("claude-backup", "1", "false"), dict(raw.headers)
    return f"{completion.model} by chain backup-first"


# --- OpenAI client, Responses API --------------------------------------------------------------

RESP_TOOLS = [
    {"type": "function", "name": "get_weather", "description": "Current weather", "parameters": WEATHER}
]


def expect_usage(usage):
    assert usage.input_tokens > 0 and usage.output_tokens > 0, usage
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens, usage
    assert usage.input_tokens_details.cached_tokens >= 0, usage


def responses_create_stream(answered_by, model=ROUTE):
    def run():
        stream = OAI.responses.create(model=model, input="Why is the sky blue?", stream=True)
        text, types, numbers, final = "", [], [], None
        for event in stream:
            types.append(event.type)
            numbers.append(event.sequence_number)
            if event.type == "response.output_text.delta":
                text += event.delta
            if event.type == "response.completed":
                final = event.response
        assert types[:2] == ["response.created", "response.in_progress"], types[:3]
        assert types[-1] == "response.completed", types[-3:]
        assert numbers == list(range(len(numbers))), "sequence_number counts up from 0"
        assert text.strip(), "no text"
        assert final.status == "completed", final.status
        assert final.output_text == text, (final.output_text, text)
        expect_model(final.model, answered_by)
        expect_usage(final.usage)
        return f"{final.model}, {len(types)} events, usage {final.usage.input_tokens}+{final.usage.output_tokens}"

    return run


def responses_create_whole(answered_by, model=ROUTE):
    def run():
        response = OAI.responses.create(
            model=model, instructions="Be brief.", input=[{"role": "user", "content": "Hi"}]
        )
        assert response.object == "response" and response.status == "completed", response.status
        assert response.id.startswith("resp_"), response.id
        assert response.output[0].type == "message", response.output
        assert response.output_text.strip(), "no output_text"
        # The request's fields come back in the response object, the gateway's own or (passed
        # through) the upstream's.
        assert response.instructions == "Be brief.", response.instructions
        expect_model(response.model, answered_by)
        expect_usage(response.usage)
        assert response._request_id, "no x-request-id"
        return f"{response.model}, id {response.id}"

    return run


def responses_stream_helper(answered_by, model=ROUTE):
    def run():
        deltas = []
        with OAI.responses.stream(model=model, input="Why is the sky blue?") as stream:
            for event in stream:
                if event.type == "response.output_text.delta":
                    deltas.append(event.delta)
                    assert event.snapshot.endswith(event.delta), "the helper's snapshot"
            final = stream.get_final_response()
        assert final.output_text == "".join(deltas), (final.output_text, deltas)
        expect_model(final.model, answered_by)
        expect_usage(final.usage)
        return f"{final.model}, {len(deltas)} deltas"

    return run


def responses_tool_round_trip(answered_by, model=ROUTE):
    def run():
        ask = [{"role": "user", "content": "What is the weather in Paris?"}]
        with OAI.responses.stream(model=model, input=ask, tools=RESP_TOOLS) as stream:
            final = stream.get_final_response()
        calls = [item for item in final.output if item.type == "function_call"]
        assert len(calls) == 1, final.output
        call = calls[0]
        assert call.name == "get_weather" and call.id.startswith("fc_"), call
        arguments = json.loads(call.arguments)
        assert isinstance(arguments.get("location"), str), arguments
        history = ask + [item.model_dump(exclude_none=True) for item in final.output]
        history.append({"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"})
        answer = OAI.responses.create(model=model, input=history, tools=RESP_TOOLS)
        assert answer.status == "completed", answer.status
        assert not [item for item in answer.output if item.type == "function_call"], answer.output
        assert answer.output_text.strip(), "no answer after the tool result"
        expect_model(answer.model, answered_by)
        return f"{call.name}({call.arguments}) -> {answer.output_text[:40]!r}"

    return run


def responses_max_output_tokens(answered_by):
    def run():
        response = OAI.responses.create(model=ROUTE, input="Tell me a story.", max_output_tokens=16)
        assert response.status == "incomplete", response.status
        assert response.incomplete_details.reason == "max_output_tokens", response.incomplete_details
        expect_model(response.model, answered_by)
        return f"incomplete: {response.incomplete_details.reason}"

    return run


def responses_whole_text(client=OAI0):
    response = client.responses.create(model=ROUTE, input="hi")
    return f"{response.output_text} [{response.model}]"


def responses_stream_text(client=OAI0):
    stream = client.responses.create(model=ROUTE, input="hi", stream=True)
    return "".join(e.delta for e in stream if e.type == "response.output_text.delta")


def responses_previous_response_id():
    OAI0.responses.create(model=ROUTE, input="hi", previous_response_id="resp_123")


def responses_previous_response_id_same_protocol():
    """On a route with a Responses target, previous_response_id goes to it, as sent."""
    response = OAI0.responses.create(model=SAME, input="hi", previous_response_id="resp_123")
    assert response.status == "completed", response.status
    expect_model(response.model, "responses")
    return f"{response.model}, id {response.id}"


def responses_cut_stream():
    """A Responses stream that breaks after text: response.failed, and the helper has no final response."""
    received, types = [], []
    with OAI0.responses.stream(model=ROUTE, input="Why is the sky blue?") as stream:
        for event in stream:
            types.append(event.type)
            if event.type == "response.output_text.delta":
                received.append(event.delta)
        try:
            stream.get_final_response()
        except RuntimeError as e:
            assert received, "the failure came before any text: the cut should be mid-stream"
            assert types[-1] == "response.failed", types[-3:]
            assert "response.completed" not in types
            return f"response.failed after {len(received)} deltas; get_final_response: {e}"
    raise AssertionError(f"the stream completed ({types[-1]}): a cut reply looked whole")


BOTH_RATE_LIMITED = {"anthropic": "rate_limit:retry_after=3s", "openai": "rate_limit:retry_after=3s"}
BOTH_OVERLOADED = {"anthropic": "overloaded", "openai": "overloaded"}
CUT = {"anthropic": "stream_cut:after=5"}

CHECKS = [
    # The Responses API: translated to whichever protocol answers.
    ("openai: responses.create stream (anthropic answered)", responses_create_stream("anthropic")),
    (
        "openai: responses.create stream (openai answered)",
        with_tripped("anthropic", responses_create_stream("openai")),
    ),
    ("openai: responses.create whole (anthropic answered)", responses_create_whole("anthropic")),
    (
        "openai: responses.create whole (openai answered)",
        with_tripped("anthropic", responses_create_whole("openai")),
    ),
    ("openai: responses.stream helper + get_final_response", responses_stream_helper("anthropic")),
    (
        "openai: responses.stream helper (openai answered)",
        with_tripped("anthropic", responses_stream_helper("openai")),
    ),
    ("openai: responses function call round trip (anthropic)", responses_tool_round_trip("anthropic")),
    (
        "openai: responses function call round trip (openai)",
        with_tripped("anthropic", responses_tool_round_trip("openai")),
    ),
    ("openai: responses max_output_tokens -> incomplete", responses_max_output_tokens("anthropic")),
    (
        "both rate limited: responses.create -> RateLimitError 429 + retry-after",
        with_faults(
            BOTH_RATE_LIMITED,
            raises(responses_whole_text, openai.RateLimitError, status_is(429, retry_after=True)),
        ),
    ),
    (
        "both rate limited: responses stream -> RateLimitError 429 + retry-after",
        with_faults(
            BOTH_RATE_LIMITED,
            raises(responses_stream_text, openai.RateLimitError, status_is(429, retry_after=True)),
        ),
    ),
    (
        "responses previous_response_id -> BadRequestError 400",
        raises(
            responses_previous_response_id,
            openai.BadRequestError,
            status_is(400, mentions="previous_response_id"),
        ),
    ),
    ("anthropic stream_cut: responses stream ends in response.failed", with_faults(CUT, responses_cut_stream)),
    # The Responses API to a Responses target: passed through.
    ("openai: responses.create stream, same protocol", responses_create_stream("responses", SAME)),
    ("openai: responses.create whole, same protocol", responses_create_whole("responses", SAME)),
    ("openai: responses.stream helper, same protocol", responses_stream_helper("responses", SAME)),
    ("openai: responses function call round trip, same protocol", responses_tool_round_trip("responses", SAME)),
    ("openai: responses previous_response_id, same protocol", responses_previous_response_id_same_protocol),
    # Same protocol or not, the caller's protocol, whoever answered.
    ("openai: chat.completions stream + usage (anthropic answered)", openai_stream("anthropic")),
    ("openai: chat.completions not streamed (anthropic answered)", openai_whole("anthropic")),
    ("anthropic: messages.create not streamed", anthropic_whole("anthropic")),
    ("anthropic: messages.stream get_final_message", anthropic_stream("anthropic")),
    ("anthropic: messages.create(stream=True) event order", anthropic_raw_events("anthropic")),
    (
        "anthropic tripped: anthropic messages.create (openai answered)",
        with_tripped("anthropic", anthropic_whole("openai")),
    ),
    (
        "anthropic tripped: anthropic messages.stream (openai answered)",
        with_tripped("anthropic", anthropic_stream("openai")),
    ),
    (
        "anthropic tripped: anthropic create(stream=True) event order (openai answered)",
        with_tripped("anthropic", anthropic_raw_events("openai")),
    ),
    (
        "anthropic overloaded: anthropic messages.stream fails over invisibly (openai answered)",
        with_faults({"anthropic": "overloaded"}, anthropic_stream("openai")),
    ),
    (
        "anthropic tripped: openai chat.completions stream (openai answered)",
        with_tripped("anthropic", openai_stream("openai")),
    ),
    (
        "anthropic tripped: openai chat.completions not streamed (openai answered)",
        with_tripped("anthropic", openai_whole("openai")),
    ),
    # Tool calls, both ways.
    ("openai: tool call streamed (anthropic answered)", openai_tool_stream("anthropic")),
    ("openai: tool call not streamed (anthropic answered)", openai_tool_whole("anthropic")),
    ("openai: tool result round trip (anthropic answered)", openai_tool_round_trip("anthropic")),
    (
        "anthropic tripped: openai tool call streamed (openai answered)",
        with_tripped("anthropic", openai_tool_stream("openai")),
    ),
    (
        "anthropic tripped: openai tool call not streamed (openai answered)",
        with_tripped("anthropic", openai_tool_whole("openai")),
    ),
    ("anthropic: tool_use not streamed", anthropic_tool_whole("anthropic")),
    ("anthropic: tool_use streamed", anthropic_tool_stream("anthropic")),
    ("anthropic: tool result round trip", anthropic_tool_round_trip("anthropic")),
    (
        "anthropic tripped: anthropic tool_use not streamed (openai answered)",
        with_tripped("anthropic", anthropic_tool_whole("openai")),
    ),
    (
        "anthropic tripped: anthropic tool_use streamed (openai answered)",
        with_tripped("anthropic", anthropic_tool_stream("openai")),
    ),
    (
        "anthropic tripped: anthropic tool result round trip (openai answered)",
        with_tripped("anthropic", anthropic_tool_round_trip("openai")),
    ),
    ("openai: max_completion_tokens -> finish_reason length (anthropic answered)", openai_length("anthropic")),
    (
        "anthropic tripped: anthropic max_tokens -> stop_reason max_tokens (openai answered)",
        with_tripped("anthropic", anthropic_max_tokens("openai")),
    ),
    (
        "openai: tool_choice none -> words, no tool call (anthropic answered)",
        openai_tool_choice_none("anthropic"),
    ),
    (
        "anthropic tripped: openai tool_choice none -> words, no tool call (openai answered)",
        with_tripped("anthropic", openai_tool_choice_none("openai")),
    ),
    ("anthropic: tool_choice none -> words, no tool_use", anthropic_tool_choice_none("anthropic")),
    (
        "anthropic tripped: anthropic tool_choice none -> words, no tool_use (openai answered)",
        with_tripped("anthropic", anthropic_tool_choice_none("openai")),
    ),
    ("openai: its own model name is routed (gpt-*)", lambda: openai_whole_text(model="gpt-5-mini")[:40]),
    ("anthropic: its own model name is routed (claude-*)", lambda: anthropic_whole_text(model="claude-haiku-4-5")[:40]),
    ("openai: models.list names the routes", openai_models),
    ("anthropic: models.list names the routes", anthropic_models),
    # Errors, as each client's documented exception.
    (
        "openai: unknown model -> NotFoundError 404 naming the routes",
        raises(
            lambda: openai_whole_text(model="no-such-model"),
            openai.NotFoundError,
            status_is(404, mentions=ROUTE),
        ),
    ),
    (
        "anthropic: unknown model -> NotFoundError 404 naming the routes",
        raises(
            lambda: anthropic_whole_text(model="no-such-model"),
            anthropic.NotFoundError,
            status_is(404, mentions=ROUTE),
        ),
    ),
    (
        "both rate limited: openai stream -> RateLimitError 429 + retry-after",
        with_faults(
            BOTH_RATE_LIMITED,
            raises(openai_stream_text, openai.RateLimitError, status_is(429, retry_after=True)),
        ),
    ),
    (
        "both rate limited: openai not streamed -> RateLimitError 429 + retry-after",
        with_faults(
            BOTH_RATE_LIMITED,
            raises(openai_whole_text, openai.RateLimitError, status_is(429, retry_after=True)),
        ),
    ),
    (
        "both rate limited: anthropic stream -> RateLimitError 429 + retry-after",
        with_faults(
            BOTH_RATE_LIMITED,
            raises(anthropic_stream_text, anthropic.RateLimitError, status_is(429, retry_after=True)),
        ),
    ),
    (
        "both rate limited: anthropic not streamed -> RateLimitError 429 + retry-after",
        with_faults(
            BOTH_RATE_LIMITED,
            raises(anthropic_whole_text, anthropic.RateLimitError, status_is(429, retry_after=True)),
        ),
    ),
    (
        "both overloaded: anthropic stream -> OverloadedError 529",
        with_faults(
            BOTH_OVERLOADED,
            raises(anthropic_stream_text, anthropic.OverloadedError, status_is(529)),
        ),
    ),
    (
        "both overloaded: openai stream -> InternalServerError 503",
        with_faults(
            BOTH_OVERLOADED,
            raises(openai_stream_text, openai.InternalServerError, status_is(503)),
        ),
    ),
    (
        "anthropic bad_request: anthropic stream -> BadRequestError 400",
        with_faults(
            {"anthropic": "bad_request"},
            raises(anthropic_stream_text, anthropic.BadRequestError, status_is(400)),
        ),
    ),
    (
        "anthropic bad_request: openai not streamed -> BadRequestError 400",
        with_faults(
            {"anthropic": "bad_request"},
            raises(openai_whole_text, openai.BadRequestError, status_is(400)),
        ),
    ),
    (
        "anthropic bad_request, openai rate limited: anthropic -> still BadRequestError 400",
        with_faults(
            {"anthropic": "bad_request", "openai": "rate_limit:retry_after=3s"},
            raises(anthropic_whole_text, anthropic.BadRequestError, status_is(400)),
        ),
    ),
    (
        "anthropic bad_request, openai rate limited: openai stream -> still BadRequestError 400",
        with_faults(
            {"anthropic": "bad_request", "openai": "rate_limit:retry_after=3s"},
            raises(openai_stream_text, openai.BadRequestError, status_is(400)),
        ),
    ),
    (
        "anthropic context_length: openai -> BadRequestError code context_length_exceeded",
        with_faults(
            {"anthropic": "context_length"},
            raises(openai_stream_text, openai.BadRequestError, openai_code("context_length_exceeded")),
        ),
    ),
    (
        "anthropic context_length: anthropic -> BadRequestError 'prompt is too long'",
        with_faults(
            {"anthropic": "context_length"},
            raises(
                anthropic_stream_text,
                anthropic.BadRequestError,
                status_is(400, mentions="prompt is too long"),
            ),
        ),
    ),
    (
        "both rate limited until the breakers open: anthropic -> 503 with retry-after",
        with_faults(
            BOTH_RATE_LIMITED,
            until_breakers_open(anthropic_whole_text, anthropic.APIStatusError),
        ),
    ),
    (
        "both rate limited until the breakers open: openai -> 503 with retry-after",
        with_faults(BOTH_RATE_LIMITED, until_breakers_open(openai_stream_text, openai.APIStatusError)),
    ),
    # Per-request control, and a reply spliced from two targets.
    ("openai: x-breakerbox-chain picks the chain", openai_chain_by_header),
    (
        "anthropic server_error, x-breakerbox-failover off: InternalServerError from anthropic alone",
        with_faults({"anthropic": "server_error"}, anthropic_failover_off),
    ),
    (
        "anthropic: unknown x-breakerbox-chain -> BadRequestError 400 naming the header",
        raises(
            lambda: ANT0.messages.create(
                model=ROUTE, max_tokens=50, messages=HELLO, extra_headers={"x-breakerbox-chain": "nope"}
            ),
            anthropic.BadRequestError,
            status_is(400, mentions="x-breakerbox-chain"),
        ),
    ),
    ("anthropic stream_cut, continued: messages.stream reads one message", with_faults(CUT, anthropic_spliced_stream)),
    ("anthropic stream_cut, continued: chat.completions stream", with_faults(CUT, openai_spliced_stream)),
    ("anthropic stream_cut, continued: messages.create names the backup", with_faults(CUT, anthropic_spliced_whole)),
    ("anthropic stream_cut, continued: responses.stream names the backup", with_faults(CUT, responses_spliced_stream)),
    # A live stream that breaks after text was sent, with only a non-prefill target left.
    (
        "anthropic stream_cut before any text: anthropic messages.stream fails over invisibly",
        with_faults({"anthropic": "stream_cut:after=0"}, anthropic_stream("openai")),
    ),
    (
        "anthropic stream_cut before any text: openai stream fails over invisibly",
        with_faults({"anthropic": "stream_cut:after=0"}, openai_stream("openai")),
    ),
    (
        "anthropic stream_cut: anthropic messages.stream raises mid-stream",
        with_faults(CUT, anthropic_cut_stream),
    ),
    (
        "anthropic stream_cut: openai chat.completions stream raises mid-stream",
        with_faults(CUT, openai_cut_stream),
    ),
    (
        "anthropic stream_cut: anthropic not streamed -> complete answer (openai answered)",
        with_faults(CUT, anthropic_whole("openai")),
    ),
    (
        "anthropic stream_cut: openai not streamed -> complete answer (openai answered)",
        with_faults(CUT, openai_whole("openai")),
    ),
]

started = time.monotonic()
print(f"anthropic {anthropic.__version__}, openai {openai.__version__}, gateway {BASE}", flush=True)
clean()
for name, run in CHECKS:
    check(name, run)
print(
    f"gateway (python): {len(CHECKS) - len(failures)} passed, {len(failures)} failed "
    f"in {time.monotonic() - started:.1f} s"
)
sys.exit(1 if failures else 0)
