//! The SSE decoder, rule by rule and by property, and the protocol parsers on the recorded fixtures.

use crate::support::provider::*;
use breakerbox::provider::anthropic::AnthropicParser;
use breakerbox::provider::http::SseParser;
use breakerbox::provider::openai::OpenAiParser;
use breakerbox::provider::responses::ResponsesParser;
use breakerbox::provider::sse::{Decoder, SseError, SseEvent, SseItem, SseStream, SseStreamError};
use breakerbox::provider::{ErrorClass, StreamEvent};
use bytes::Bytes;
use futures::StreamExt;
use proptest::prelude::*;

fn decode_in(chunks: &[&[u8]], max: usize) -> (Vec<SseItem>, Decoder) {
    let mut decoder = Decoder::new(max);
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk, &mut out);
    }
    decoder.finish(&mut out);
    (out, decoder)
}

fn decode(bytes: &[u8]) -> Vec<SseItem> {
    decode_in(&[bytes], 1 << 20).0
}

fn ev(name: Option<&str>, data: &str) -> SseItem {
    Ok(SseEvent {
        event: name.map(String::from),
        data: data.into(),
    })
}

// ---- one test per rule ----

#[test]
fn an_event_split_into_one_byte_reads_decodes_the_same() {
    let bytes = b"event: ping\ndata: {\"type\": \"ping\"}\n\n";
    let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(
        decode_in(&chunks, 1024).0,
        vec![ev(Some("ping"), "{\"type\": \"ping\"}")]
    );
}

#[test]
fn all_three_line_endings() {
    for ending in ["\n", "\r\n", "\r"] {
        let text = format!("event: a{ending}data: 1{ending}{ending}data: 2{ending}{ending}");
        assert_eq!(
            decode(text.as_bytes()),
            vec![ev(Some("a"), "1"), ev(None, "2")],
            "{ending:?}"
        );
    }
}

#[test]
fn cr_ending_one_chunk_and_lf_starting_the_next_is_one_line_ending() {
    // Were `\r` and `\n` two endings, the `\n` would be a blank line and dispatch "x" early.
    let (out, _) = decode_in(&[b"data: x\r", b"\ndata: y\r", b"\n\r", b"\n"], 1024);
    assert_eq!(out, vec![ev(None, "x\ny")]);
}

#[test]
fn comments_are_counted_and_are_not_events() {
    let (out, decoder) = decode_in(
        &[b": OPENROUTER PROCESSING\n\n:\n\ndata: a\n: inside\n\n"],
        1024,
    );
    assert_eq!(out, vec![ev(None, "a")]);
    assert_eq!(decoder.comments(), 3);
}

#[test]
fn exactly_one_space_after_the_colon_is_dropped() {
    assert_eq!(
        decode(b"data:x\n\ndata: x\n\ndata:  x\n\nevent:  e\ndata:\n\n"),
        vec![
            ev(None, "x"),
            ev(None, "x"),
            ev(None, " x"),
            ev(Some(" e"), "")
        ]
    );
}

#[test]
fn data_lines_join_with_newlines() {
    assert_eq!(
        decode(b"data: a\ndata:\ndata: c\n\n"),
        vec![ev(None, "a\n\nc")]
    );
}

#[test]
fn the_last_event_field_names_the_event() {
    assert_eq!(
        decode(b"event: one\nevent: two\ndata: x\n\ndata: y\n\n"),
        vec![ev(Some("two"), "x"), ev(None, "y")]
    );
}

#[test]
fn id_retry_unknown_and_valueless_fields_are_ignored() {
    assert_eq!(
        decode(b"id: 7\nretry: 100\nfoo: bar\nevent\nmystery\ndata: x\nid\n\n"),
        vec![ev(None, "x")]
    );
}

#[test]
fn a_blank_line_without_data_dispatches_nothing() {
    assert_eq!(
        decode(b"\n\nevent: lonely\n\n\ndata: x\n\n"),
        vec![ev(None, "x")]
    );
}

#[test]
fn a_pending_event_is_delivered_at_end_of_input() {
    assert_eq!(
        decode(b"data: a\n\ndata: b"),
        vec![ev(None, "a"), ev(None, "b")]
    );
    assert_eq!(
        decode(b"data: a\n\ndata: b\n"),
        vec![ev(None, "a"), ev(None, "b")]
    );
    assert_eq!(
        decode(b"data: a\r\n\r\nevent: x\r\ndata: b\r"),
        vec![ev(None, "a"), ev(Some("x"), "b")]
    );
    assert_eq!(decode(b"data: a\n\nevent: no-data"), vec![ev(None, "a")]);
}

#[test]
fn a_character_split_across_reads_survives() {
    let bytes = "data: é€😀\n\n".as_bytes();
    let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(decode_in(&chunks, 1024).0, vec![ev(None, "é€😀")]);
}

#[test]
fn invalid_utf8_fails_that_event_only() {
    assert_eq!(
        decode(b"data: a\n\ndata: \xff\xfe\n\nevent: \xc3\ndata: b\n\ndata: c\n\n"),
        vec![
            ev(None, "a"),
            Err(SseError::InvalidUtf8),
            Err(SseError::InvalidUtf8),
            ev(None, "c")
        ]
    );
}

#[test]
fn an_oversized_line_without_newline_is_an_error_and_is_not_buffered() {
    let mut decoder = Decoder::new(1000);
    let mut out = Vec::new();
    decoder.feed(b"data: ", &mut out);
    let block = vec![b'x'; 4096];
    for _ in 0..2560 {
        // 10 MiB of one line, never terminated.
        decoder.feed(&block, &mut out);
        assert!(decoder.buffered_len() <= 1000);
    }
    assert_eq!(out, vec![Err(SseError::TooLarge { limit: 1000 })]);
    assert_eq!(
        out[0].as_ref().unwrap_err().to_string(),
        "SSE event exceeds 1000 bytes"
    );
    // The oversized event is skipped up to its blank line; the next one decodes.
    decoder.feed(b"\ndata: more\n\ndata: ok\n\n", &mut out);
    assert_eq!(out[1..], [ev(None, "ok")]);
    assert_eq!(decoder.buffered_len(), 0);
}

#[test]
fn many_small_data_lines_are_bounded_too() {
    let mut bytes = b"data: first\n\n".to_vec();
    for _ in 0..1000 {
        bytes.extend_from_slice(b"data: 0123456789\n");
    }
    bytes.extend_from_slice(b"\ndata: last\n\n");
    let (out, decoder) = decode_in(&bytes.chunks(7).collect::<Vec<_>>(), 2048);
    assert_eq!(
        out,
        vec![
            ev(None, "first"),
            Err(SseError::TooLarge { limit: 2048 }),
            ev(None, "last")
        ]
    );
    assert_eq!(decoder.buffered_len(), 0);
}

#[test]
fn an_event_exactly_at_the_limit_passes() {
    // Counted: the raw lines held, less their endings.
    let (out, _) = decode_in(&[b"data: 12345\n\n"], 11);
    assert_eq!(out, vec![ev(None, "12345")]);
    let (out, _) = decode_in(&[b"data: 123456\n\n"], 11);
    assert_eq!(out, vec![Err(SseError::TooLarge { limit: 11 })]);
}

#[tokio::test]
async fn the_stream_adapter_yields_decode_errors_and_ends_on_body_errors() {
    let chunks: Vec<Result<Bytes, &str>> = vec![
        Ok(Bytes::from_static(b"data: \xff\n\ndata: a\n")),
        Ok(Bytes::from_static(b"\n: keepalive\n\ndata: b")),
        Err("reset"),
        Ok(Bytes::from_static(b"data: never\n\n")),
    ];
    let mut stream = SseStream::new(futures::stream::iter(chunks), 1024);
    let mut items = Vec::new();
    while let Some(item) = stream.next().await {
        items.push(item);
    }
    assert!(matches!(
        items[0],
        Err(SseStreamError::Decode(SseError::InvalidUtf8))
    ));
    assert_eq!(items[1].as_ref().unwrap().data, "a");
    assert!(matches!(items[2], Err(SseStreamError::Body("reset"))));
    assert_eq!(items.len(), 3);
    assert_eq!(stream.decoder().comments(), 1);
}

#[tokio::test]
async fn the_stream_adapter_flushes_the_pending_event_at_end() {
    let chunks: Vec<Result<Bytes, ()>> = vec![Ok(Bytes::from_static(b"data: a\n\ndata: b"))];
    let items: Vec<_> = SseStream::new(futures::stream::iter(chunks), 1024)
        .map(|i| i.unwrap().data)
        .collect()
        .await;
    assert_eq!(items, ["a", "b"]);
}

// ---- properties ----

#[derive(Debug, Clone)]
enum Line {
    Field(&'static str, String),
    Comment(String),
    Blank,
}

#[derive(Debug, Clone)]
struct Model {
    lines: Vec<Line>,
    expected: Vec<SseEvent>,
    comments: u64,
    /// The input ends without even the last line's ending.
    open_end: bool,
}

fn value() -> impl Strategy<Value = String> {
    "[^\r\n]{0,12}"
}

/// An event: optional noise, an optional name, one or more data lines, in a random order of
/// name vs data, then (usually) a blank line.
fn event() -> impl Strategy<Value = (Vec<Line>, SseEvent, u64)> {
    let noise = prop_oneof![
        value().prop_map(Line::Comment),
        value().prop_map(|v| Line::Field("id", v)),
        "[0-9]{1,4}".prop_map(|v| Line::Field("retry", v)),
        value().prop_map(|v| Line::Field("x-unknown", v)),
    ];
    (
        prop::collection::vec(noise, 0..3),
        prop::option::of("[^\r\n]{1,10}"),
        prop::collection::vec(value(), 1..4),
        any::<bool>(),
    )
        .prop_map(|(noise, name, data, name_last)| {
            let comments = noise
                .iter()
                .filter(|l| matches!(l, Line::Comment(_)))
                .count() as u64;
            let mut lines = noise;
            let data_lines = data.iter().map(|d| Line::Field("data", d.clone()));
            let name_line = name.clone().map(|n| Line::Field("event", n));
            if name_last {
                lines.extend(data_lines);
                lines.extend(name_line);
            } else {
                lines.extend(name_line);
                lines.extend(data_lines);
            }
            let event = SseEvent {
                event: name,
                data: data.join("\n"),
            };
            (lines, event, comments)
        })
}

/// A stream of events; the last one's closing blank line, or even its last line ending, is sometimes
/// missing.
fn model() -> impl Strategy<Value = Model> {
    (
        prop::collection::vec(event(), 0..6),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(events, close_last, open_end)| {
            let mut model = Model {
                lines: Vec::new(),
                expected: Vec::new(),
                comments: 0,
                open_end: open_end && !close_last,
            };
            let count = events.len();
            for (i, (lines, event, comments)) in events.into_iter().enumerate() {
                model.lines.extend(lines);
                if i + 1 < count || close_last {
                    model.lines.push(Line::Blank);
                }
                model.expected.push(event);
                model.comments += comments;
            }
            model
        })
}

/// Render with the given line ending per line (cycled). After a lone `\r`, a blank line must not end
/// in `\n`, or the two would read as one `\r\n`.
fn render(model: &Model, endings: &[&str], space: &[bool]) -> Vec<u8> {
    let lines = &model.lines;
    let mut out = String::new();
    let mut previous = "";
    for (i, line) in lines.iter().enumerate() {
        let mut ending = endings[i % endings.len()];
        match line {
            Line::Blank if previous == "\r" => ending = "\r",
            Line::Blank => {}
            Line::Comment(text) => {
                out.push(':');
                out.push_str(text);
            }
            Line::Field(name, value) => {
                out.push_str(name);
                out.push(':');
                // The separating space is optional unless the value itself starts with a space.
                if space[i % space.len()] || value.starts_with(' ') {
                    out.push(' ');
                }
                out.push_str(value);
            }
        }
        out.push_str(ending);
        previous = ending;
    }
    if model.open_end {
        // The last line has content, so this strips exactly its ending.
        out.truncate(out.trim_end_matches(['\r', '\n']).len());
    }
    out.into_bytes()
}

fn split_decode(bytes: &[u8], sizes: &[usize]) -> (Vec<SseItem>, u64) {
    let mut decoder = Decoder::new(1 << 16);
    let mut out = Vec::new();
    let mut rest = bytes;
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at(size.clamp(1, rest.len()));
        decoder.feed(chunk, &mut out);
        rest = tail;
    }
    decoder.finish(&mut out);
    (out, decoder.comments())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_split_and_any_line_ending_decode_the_same(
        model in model(),
        ending in prop::sample::select(vec!["\n", "\r\n", "\r"]),
        space in prop::collection::vec(any::<bool>(), 1..5),
        sizes in prop::collection::vec(1usize..24, 1..16),
    ) {
        let bytes = render(&model, &[ending], &space);
        let expected: Vec<SseItem> = model.expected.iter().cloned().map(Ok).collect();
        prop_assert_eq!(&split_decode(&bytes, &[bytes.len().max(1)]), &(expected.clone(), model.comments));
        prop_assert_eq!(&split_decode(&bytes, &sizes), &(expected.clone(), model.comments));
        prop_assert_eq!(&split_decode(&bytes, &[1]), &(expected, model.comments));
    }

    #[test]
    fn mixed_line_endings_decode_the_same(
        model in model(),
        endings in prop::collection::vec(prop::sample::select(vec!["\n", "\r\n", "\r"]), 1..8),
        sizes in prop::collection::vec(1usize..24, 1..16),
    ) {
        let bytes = render(&model, &endings, &[true]);
        let expected: Vec<SseItem> = model.expected.iter().cloned().map(Ok).collect();
        prop_assert_eq!(&split_decode(&bytes, &sizes).0, &expected);
        prop_assert_eq!(&split_decode(&bytes, &[1]).0, &expected);
    }

    #[test]
    fn fixtures_normalize_the_same_under_any_split(
        sizes in prop::collection::vec(1usize..300, 1..16),
        ending in prop::sample::select(vec!["\n", "\r\n", "\r"]),
    ) {
        for name in ANTHROPIC_FIXTURES.iter().chain(&OPENAI_FIXTURES).chain(&RESPONSES_FIXTURES) {
            let bytes = String::from_utf8(fixture(name)).unwrap().replace('\n', ending).into_bytes();
            let got = if name.starts_with("anthropic") {
                normalize(AnthropicParser::default(), &bytes, &sizes)
            } else if RESPONSES_FIXTURES.contains(name) {
                normalize(ResponsesParser::default(), &bytes, &sizes)
            } else {
                normalize(OpenAiParser::default(), &bytes, &sizes)
            };
            prop_assert_eq!(got.unwrap(), expected(name), "{}", name);
        }
    }
}

// ---- the parsers on the fixtures ----

#[test]
fn every_fixture_normalizes_in_one_byte_reads() {
    for name in ANTHROPIC_FIXTURES {
        let got = normalize(AnthropicParser::default(), &fixture(name), &[1]).unwrap();
        assert_eq!(got, expected(name), "{name}");
    }
    for name in OPENAI_FIXTURES {
        let got = normalize(OpenAiParser::default(), &fixture(name), &[1]).unwrap();
        assert_eq!(got, expected(name), "{name}");
    }
    for name in RESPONSES_FIXTURES {
        let got = normalize(ResponsesParser::default(), &fixture(name), &[1]).unwrap();
        assert_eq!(got, expected(name), "{name}");
    }
}

#[test]
fn fixture_content_in_plain_words() {
    let events = expected("anthropic/tool_use_response.sse");
    assert_eq!(
        joined(&events, 1),
        (
            "I'll check the current weather in Paris for you.".to_string(),
            r#"{"location": "Paris"}"#.to_string()
        )
    );
    let events = expected("openai/basic_stream.sse");
    assert_eq!(
        joined(&events, 0).0,
        "I'm unable to provide real-time weather updates. To get the current weather in San \
         Francisco, I recommend checking a reliable weather website or a weather app."
    );
    let events = expected("openai/tool_calls_stream.sse");
    assert_eq!(
        joined(&events, 0).1,
        r#"{"city":"Edinburgh","country":"UK","units":"c"}"#
    );
    let events = expected("openai/responses_stream.sse");
    assert_eq!(
        joined(&events, 0).0,
        "I can't provide real-time updates, but you can easily check the current weather in San \
         Francisco using a weather website or app. Typically, San Francisco has cool, foggy \
         summers and mild winters, so it's good to be prepared for variable weather!"
    );
    let events = expected("openai/responses_tool_call_stream.sse");
    assert_eq!(joined(&events, 0).1, r#"{"city":"Paris"}"#);
}

fn class_of<P: SseParser>(parser: P, bytes: &str) -> ErrorClass {
    normalize(parser, bytes.as_bytes(), &[usize::MAX])
        .unwrap_err()
        .class
}

#[test]
fn anthropic_stream_edges() {
    let basic = String::from_utf8(fixture("anthropic/basic_response.sse")).unwrap();
    // Lost `message_stop` after a stop reason: still complete.
    let cut = &basic[..basic.find("event: message_stop").unwrap()];
    let events = normalize(AnthropicParser::default(), cut.as_bytes(), &[9]).unwrap();
    assert_eq!(events, expected("anthropic/basic_response.sse"));
    // Cut before the stop reason.
    let cut = &basic[..basic.find("event: message_delta").unwrap()];
    assert_eq!(
        class_of(AnthropicParser::default(), cut),
        ErrorClass::StreamCut
    );
    // Bad JSON, also in an event that carries nothing.
    assert_eq!(
        class_of(
            AnthropicParser::default(),
            "event: content_block_delta\ndata: {\"type\":\n\n"
        ),
        ErrorClass::Malformed
    );
    assert_eq!(
        class_of(AnthropicParser::default(), "event: ping\ndata: nope\n\n"),
        ErrorClass::Malformed
    );
    // An in-stream error event.
    let err = normalize(
        AnthropicParser::default(),
        br#"event: error
data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}

"#,
        &[5],
    )
    .unwrap_err();
    assert_eq!(
        (err.class, err.error_type.as_deref()),
        (ErrorClass::Overloaded, Some("overloaded_error"))
    );
    // No `event:` lines: the JSON type decides; thinking is kept apart; unknown events are ignored.
    let events = normalize(
        AnthropicParser::default(),
        br#"data: {"type":"message_start","message":{"id":"m","model":"c"}}

data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}

data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}

data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"abc"}}

data: {"type":"content_block_start","index":1,"content_block":{"type":"redacted_thinking","data":"x"}}

data: {"type":"brand_new_event","whatever":1}

data: {"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":9}}

data: {"type":"message_stop"}
"#,
        &[3],
    )
    .unwrap();
    assert_eq!(
        events,
        vec![
            StreamEvent::MessageStart {
                id: "m".into(),
                model: "c".into()
            },
            StreamEvent::ThinkingDelta { text: "hmm".into() },
            StreamEvent::Usage(breakerbox::provider::Usage {
                output_tokens: 9,
                ..Default::default()
            }),
            StreamEvent::Done {
                stop_reason: breakerbox::provider::StopReason::MaxTokens,
                raw_stop_reason: Some("max_tokens".into())
            },
        ]
    );
}

#[test]
fn openai_stream_edges() {
    let basic = String::from_utf8(fixture("openai/basic_stream.sse")).unwrap();
    // No `[DONE]` (some compatible servers): complete after the finish reason.
    let no_done = basic.replace("data: [DONE]\n\n", "");
    let events = normalize(OpenAiParser::default(), no_done.as_bytes(), &[50]).unwrap();
    assert_eq!(events, expected("openai/basic_stream.sse"));
    // Cut before the finish reason.
    let cut = &basic[..basic.find("\"finish_reason\":\"stop\"").unwrap()];
    let cut = &cut[..cut.rfind("\n\n").unwrap() + 2];
    assert_eq!(
        class_of(OpenAiParser::default(), cut),
        ErrorClass::StreamCut
    );
    assert_eq!(
        class_of(OpenAiParser::default(), "data: {oops\n\n"),
        ErrorClass::Malformed
    );
    // In-stream errors: OpenRouter's object, a string, a flat payload.
    for (payload, class) in [
        (
            r#"{"error":{"message":"Rate limit exceeded","code":429,"type":"rate_limit_exceeded"}}"#,
            ErrorClass::RateLimited,
        ),
        (
            r#"{"id":"x","error":"upstream overloaded"}"#,
            ErrorClass::Overloaded,
        ),
        (
            r#"{"object":"error","message":"boom","type":"InternalServerError","code":500}"#,
            ErrorClass::ServerError,
        ),
    ] {
        let text = format!(": OPENROUTER PROCESSING\n\ndata: {payload}\n\n");
        assert_eq!(class_of(OpenAiParser::default(), &text), class, "{payload}");
    }
    // Reasoning, cached tokens, a tool call arriving whole, and a repeated id.
    let events = normalize(
        OpenAiParser::default(),
        br#"data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{"role":"assistant","reasoning_content":"think"}}]}

data: {"id":"c1","choices":[{"index":0,"delta":{"reasoning":"more"}}]}

data: {"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{}"}}]}}]}

data: {"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"t1","function":{"name":"f","arguments":""}}]},"finish_reason":"tool_calls"}]}

data: {"id":"c1","choices":[],"usage":{"prompt_tokens":100,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":60}}}

data: [DONE]

"#,
        &[4],
    )
    .unwrap();
    assert_eq!(
        events,
        vec![
            StreamEvent::MessageStart {
                id: "c1".into(),
                model: "m".into()
            },
            StreamEvent::ThinkingDelta {
                text: "think".into()
            },
            StreamEvent::ThinkingDelta {
                text: "more".into()
            },
            StreamEvent::ToolCallStart {
                index: 0,
                id: "t1".into(),
                name: "f".into()
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                partial_json: "{}".into()
            },
            StreamEvent::Usage(breakerbox::provider::Usage {
                input_tokens: 40,
                output_tokens: 7,
                cache_read_tokens: 60,
                cache_write_tokens: 0,
                reasoning_tokens: 0,
            }),
            StreamEvent::Done {
                stop_reason: breakerbox::provider::StopReason::ToolUse,
                raw_stop_reason: Some("tool_calls".into())
            },
        ]
    );
}
