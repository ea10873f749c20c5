//! What a simulated provider answers: deterministic words generated from the prompt and a seed, or a
//! tool call built from the offered tool's input schema. Protocol-neutral; `anthropic.rs`,
//! `openai.rs` and `responses.rs` put it on the wire.

use serde_json::{Map, Value};

use super::rng::{Rng, hash, mix};

/// A request reduced to what the simulator needs, read from either protocol's body.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SimRequest {
    pub model: Option<String>,
    /// System prompt and every message's text, in order: what the reply is seeded from.
    pub prompt: String,
    /// The text of the last user message: a tool it names is the one called, and a `quoted`
    /// value in it is that call's argument (see [`Reply::generate`]).
    pub last_user: String,
    pub messages: usize,
    pub max_tokens: Option<u32>,
    pub tools: Vec<Tool>,
    /// The client asked for no tool call (`tool_choice` none).
    pub tools_disabled: bool,
    /// The last message carries a tool's result, so the model now answers in words (a tool call
    /// again would loop an agent forever).
    pub after_tool_result: bool,
    pub stream: bool,
    /// OpenAI's `stream_options.include_usage`.
    pub include_usage: bool,
    /// A partial assistant reply to continue from (Anthropic's prefill).
    pub prefill: Option<String>,
    /// The request's fields that the reply object repeats (the Responses API's `instructions`,
    /// `tools`, `reasoning`, …), as sent.
    pub echo: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tool {
    pub name: String,
    pub schema: Value,
}

/// Why the reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    EndTurn,
    MaxTokens,
    ToolUse,
}

/// Each protocol names a stop as its client reads it ([`crate::protocol::anthropic::stop_reason`]
/// and its counterparts, the one place each protocol's names are written).
impl From<Stop> for crate::provider::StopReason {
    fn from(stop: Stop) -> Self {
        match stop {
            Stop::EndTurn => crate::provider::StopReason::EndTurn,
            Stop::MaxTokens => crate::provider::StopReason::MaxTokens,
            Stop::ToolUse => crate::provider::StopReason::ToolUse,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolCall {
    pub name: String,
    pub input: Value,
    /// The input's JSON in the pieces it is streamed in; they concatenate to `input`.
    pub pieces: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    /// One token per word, each with its leading space (the first has none).
    pub tokens: Vec<String>,
    pub tool_call: Option<ToolCall>,
    pub stop: Stop,
    pub input_tokens: u64,
}

impl Reply {
    /// `lead_in`: say a few words before a tool call, as Claude does (OpenAI models call at once).
    ///
    /// With tools offered, the model calls one, as a real model does when asked to: the first
    /// tool the last user message names (as a word), else the first tool. Its input fits the
    /// tool's schema (see [`sample`]), and a value the user quoted in backticks (the last one)
    /// fills its first required string property, so "Use Bash to run `echo hi`" calls
    /// `Bash {"command": "echo hi"}`: what a real agent needs to run a tool it can check.
    pub fn generate(request: &SimRequest, seed: u64, use_tools: bool, lead_in: bool) -> Reply {
        let mut rng = Rng::new(mix(&[seed, hash(&[request.prompt.as_bytes()])]));
        let budget = request.max_tokens.map_or(usize::MAX, |m| m as usize);
        // A continued reply is words only: a tool call cannot be spliced onto text.
        let tool = named_tool(&request.tools, &request.last_user).filter(|_| {
            use_tools
                && !request.tools_disabled
                && !request.after_tool_result
                && request.prefill.is_none()
        });
        let mut tokens = match tool {
            Some(tool) if lead_in => words_of(&format!("I'll use {} for that.", tool.name)),
            Some(_) => Vec::new(),
            None => {
                let count = rng.between(20, 80) as usize;
                sentences(&mut rng, count)
            }
        };
        if let Some(prefill) = &request.prefill {
            tokens = continuation(&tokens, prefill);
        }
        let capped = tokens.len() > budget;
        tokens.truncate(budget);
        let tool_call = tool.filter(|_| !capped).map(|tool| {
            let mut input = sample(&tool.schema, &mut rng, 0);
            if let Some(value) = quoted(&request.last_user) {
                fill_first_required_string(&tool.schema, &mut input, value);
            }
            ToolCall {
                name: tool.name.clone(),
                pieces: pieces(&input.to_string(), &mut rng),
                input,
            }
        });
        let stop = match (&tool_call, capped) {
            (Some(_), _) => Stop::ToolUse,
            (None, true) => Stop::MaxTokens,
            (None, false) => Stop::EndTurn,
        };
        Reply {
            tokens,
            tool_call,
            stop,
            input_tokens: input_tokens(request),
        }
    }

    pub fn text(&self) -> String {
        self.tokens.concat()
    }

    /// One token per word and per streamed piece of tool input.
    pub fn output_tokens(&self) -> u64 {
        let tool = self.tool_call.as_ref().map_or(0, |t| t.pieces.len());
        (self.tokens.len() + tool) as u64
    }

    /// The reply's usage in breakerbox's own terms (no cache, no reasoning).
    pub fn usage(&self) -> crate::provider::Usage {
        crate::provider::Usage {
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens(),
            ..crate::provider::Usage::default()
        }
    }
}

/// What follows `prefill`: the rest of this reply when the prefill is how it begins (the same
/// provider continuing itself), else the reply less as many words as the prefill already has.
fn continuation(tokens: &[String], prefill: &str) -> Vec<String> {
    let full = tokens.concat();
    if let Some(rest) = full.strip_prefix(prefill) {
        return split_tokens(rest);
    }
    let said = prefill.split_whitespace().count();
    let keep = tokens.len().saturating_sub(said).max(5).min(tokens.len());
    let mut rest = tokens[tokens.len() - keep..].to_vec();
    // Joined to a prefill that ends mid-word or without a space, start with one.
    if let Some(first) = rest.first_mut()
        && !first.starts_with(' ')
        && !prefill.ends_with(char::is_whitespace)
    {
        first.insert(0, ' ');
    }
    rest
}

/// Text back into tokens: each word with its leading space, as the reply streams them.
fn split_tokens(text: &str) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    for (i, piece) in text.split(' ').enumerate() {
        if i == 0 {
            if !piece.is_empty() {
                tokens.push(piece.to_string());
            }
        } else {
            tokens.push(format!(" {piece}"));
        }
    }
    tokens
}

/// About four characters a token, plus a little per message, as real tokenizers roughly give.
pub(crate) fn input_tokens(request: &SimRequest) -> u64 {
    let tools: usize = request
        .tools
        .iter()
        .map(|t| t.name.len() + t.schema.to_string().len())
        .sum();
    let prefill = request.prefill.as_ref().map_or(0, |p| p.chars().count());
    let chars = (request.prompt.chars().count() + prefill + tools) as u64;
    chars.div_ceil(4) + 4 * request.messages as u64 + 3
}

fn words_of(text: &str) -> Vec<String> {
    text.split(' ')
        .enumerate()
        .map(|(i, w)| {
            if i == 0 {
                w.to_string()
            } else {
                format!(" {w}")
            }
        })
        .collect()
}

const WORDS: &[&str] = &[
    "the", "a", "system", "request", "provider", "stream", "token", "reply", "model", "answer",
    "breaker", "circuit", "latency", "error", "retry", "fallback", "primary", "route", "signal",
    "window", "budget", "cost", "queue", "agent", "operator", "console", "incident", "traffic",
    "health", "check", "probe", "state", "open", "closed", "half", "steady", "quick", "slow",
    "careful", "simple", "clear", "small", "large", "early", "late", "every", "each", "some",
    "many", "few", "with", "without", "after", "before", "during", "while", "when", "because",
    "so", "and", "but", "or", "then", "now", "here", "there", "always", "rarely", "often",
    "usually", "first", "next", "last", "again", "still", "already", "is", "was", "keeps", "sends",
    "reads", "waits", "fails", "recovers", "answers", "streams", "counts", "measures", "watches",
    "holds", "moves", "returns", "starts", "stops", "opens", "closes", "trips", "resets", "shows",
    "of", "to", "in", "on", "for", "from", "by", "at", "over", "under", "between", "through", "it",
    "they", "we", "this", "that", "these", "those", "its", "their", "our", "good", "fine", "ready",
    "busy", "calm", "fast", "bright", "quiet", "plain",
];

/// `count` words in sentences of 5 to 14 words, each capitalized and ending with a full stop.
fn sentences(rng: &mut Rng, count: usize) -> Vec<String> {
    let mut tokens = Vec::with_capacity(count);
    let mut left_in_sentence = 0;
    for i in 0..count {
        let word = rng.pick(WORDS).copied().unwrap_or("the");
        let starts = left_in_sentence == 0;
        if starts {
            left_in_sentence = rng.between(5, 14) as usize;
        }
        left_in_sentence -= 1;
        let mut token = String::with_capacity(word.len() + 2);
        if i > 0 {
            token.push(' ');
        }
        if starts {
            let mut chars = word.chars();
            token.extend(chars.next().map(|c| c.to_ascii_uppercase()));
            token.push_str(chars.as_str());
        } else {
            token.push_str(word);
        }
        if left_in_sentence == 0 || i + 1 == count {
            token.push('.');
            left_in_sentence = 0;
        } else if rng.chance(0.08) {
            token.push(',');
        }
        tokens.push(token);
    }
    tokens
}

/// The first of `tools` that `text` names as a whole word, else the first tool.
fn named_tool<'a>(tools: &'a [Tool], text: &str) -> Option<&'a Tool> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    let words: Vec<&str> = text.split(|c: char| !is_word(c)).collect();
    tools
        .iter()
        .find(|tool| words.contains(&tool.name.as_str()))
        .or_else(|| tools.first())
}

/// The last `code span` of `text`, if it has one that is not empty.
fn quoted(text: &str) -> Option<&str> {
    let parts: Vec<&str> = text.split('`').collect();
    // Odd parts lie between two backticks when a closing one follows.
    (1..parts.len().saturating_sub(1))
        .step_by(2)
        .map(|i| parts[i])
        .rfind(|p| !p.trim().is_empty())
}

/// Set the first required property of an object schema whose type is a string to `value`.
fn fill_first_required_string(schema: &Value, input: &mut Value, value: &str) {
    let properties = schema.get("properties").and_then(Value::as_object);
    let required = schema.get("required").and_then(Value::as_array);
    let name = required
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find(|name| {
            properties
                .and_then(|p| p.get(*name))
                .is_some_and(|p| p.get("type").and_then(Value::as_str) == Some("string"))
        });
    if let (Some(name), Some(object)) = (name, input.as_object_mut()) {
        object.insert(name.to_string(), Value::from(value));
    }
}

/// A value fitting a JSON schema: its `const`, `default` or an enum's first value, else one by
/// type. Objects get their required properties, and of the others only those the schema gives a
/// value for (`const`, `default`, `enum`): a random value in an optional field changes what a
/// real tool does (Claude Code's `Bash` with a `timeout` of 40 ms, or `run_in_background`).
fn sample(schema: &Value, rng: &mut Rng, depth: usize) -> Value {
    if let Some(value) = schema.get("const").or_else(|| schema.get("default")) {
        return value.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        // `["string", "null"]`: the first non-null type.
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if properties.is_some() => "object",
        _ => "string",
    };
    match ty {
        "object" if depth < 4 => {
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let mut object = Map::new();
            for (name, property) in properties.into_iter().flatten() {
                let vouched = ["const", "default", "enum"]
                    .iter()
                    .any(|k| property.get(k).is_some());
                if required.contains(&name.as_str()) || vouched {
                    object.insert(name.clone(), sample(property, rng, depth + 1));
                }
            }
            Value::Object(object)
        }
        "object" => Value::Object(Map::new()),
        "array" if depth < 4 => {
            let items = schema.get("items").unwrap_or(&Value::Null);
            Value::Array(vec![sample(items, rng, depth + 1)])
        }
        "array" => Value::Array(Vec::new()),
        "integer" => Value::from(rng.between(1, 100)),
        "number" => Value::from(rng.between(0, 1000) as f64 / 10.0),
        "boolean" => Value::Bool(rng.chance(0.5)),
        "null" => Value::Null,
        _ => Value::from(*rng.pick(WORDS).unwrap_or(&"value")),
    }
}

/// Split text into pieces of 1 to 8 characters (on character boundaries).
fn pieces(text: &str, rng: &mut Rng) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let len = (rng.between(1, 8) as usize).min(chars.len() - start);
        out.push(chars[start..start + len].iter().collect());
        start += len;
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn request(prompt: &str) -> SimRequest {
        SimRequest {
            prompt: prompt.to_string(),
            messages: 1,
            ..SimRequest::default()
        }
    }

    #[test]
    fn a_prefill_is_continued_not_repeated() {
        let whole = Reply::generate(&request("hello"), 1, false, true).text();
        // Cut mid-word, as a broken stream leaves it.
        let cut = whole.char_indices().nth(23).map_or(whole.len(), |(i, _)| i);
        let with_prefill = SimRequest {
            prefill: Some(whole[..cut].to_string()),
            ..request("hello")
        };
        let rest = Reply::generate(&with_prefill, 1, false, true).text();
        assert_eq!(
            format!("{}{rest}", &whole[..cut]),
            whole,
            "the same provider continues itself"
        );

        // Another provider's partial reply: a continuation, joined with a space, no tool call.
        let foreign = SimRequest {
            prefill: Some("Something else entirely".to_string()),
            tools: vec![Tool {
                name: "t".into(),
                schema: json!({"type": "object"}),
            }],
            ..request("hello")
        };
        let reply = Reply::generate(&foreign, 1, true, true);
        assert!(reply.tool_call.is_none());
        assert!(
            reply.text().starts_with(' ') && reply.tokens.len() >= 5,
            "{:?}",
            reply.text()
        );
    }

    #[test]
    fn same_prompt_and_seed_give_the_same_reply() {
        let a = Reply::generate(&request("hello"), 1, true, true);
        assert_eq!(a, Reply::generate(&request("hello"), 1, true, true));
        assert_ne!(
            a.text(),
            Reply::generate(&request("hello"), 2, true, true).text()
        );
        assert_ne!(
            a.text(),
            Reply::generate(&request("hullo"), 1, true, true).text()
        );
        assert!((20..=80).contains(&a.tokens.len()), "{}", a.tokens.len());
        assert!(!a.tokens[0].starts_with(' '));
        assert!(a.tokens[1..].iter().all(|t| t.starts_with(' ')));
        assert!(a.text().ends_with('.'));
        assert_eq!(a.stop, Stop::EndTurn);
        assert_eq!(a.output_tokens(), a.tokens.len() as u64);
    }

    #[test]
    fn max_tokens_caps_the_reply() {
        let mut r = request("hello");
        r.max_tokens = Some(3);
        let reply = Reply::generate(&r, 1, true, true);
        assert_eq!(reply.tokens.len(), 3);
        assert_eq!(reply.stop, Stop::MaxTokens);
    }

    #[test]
    fn input_tokens_grow_with_the_prompt() {
        let short = Reply::generate(&request("hi"), 1, true, true).input_tokens;
        let long = Reply::generate(&request(&"x".repeat(400)), 1, true, true).input_tokens;
        assert_eq!(long - short, 100 - 1);
    }

    #[test]
    fn tool_calls_follow_the_schema_and_stream_as_valid_json() {
        let mut r = request("weather in Paris?");
        r.tools = vec![Tool {
            name: "get_weather".into(),
            schema: json!({
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "units": {"type": "string", "enum": ["c", "f"]},
                    "days": {"type": "integer"},
                    "detail": {"type": ["boolean", "null"]},
                    "where": {"type": "object", "properties": {"lat": {"type": "number"}}, "required": ["lat"]},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "limit": {"type": "integer", "default": 7},
                    "timeout": {"type": "number"},
                    "background": {"type": "boolean"},
                },
                "required": ["city", "days", "detail", "where", "tags"],
            }),
        }];
        let reply = Reply::generate(&r, 1, true, true);
        let call = reply.tool_call.clone().unwrap();
        assert_eq!(reply.stop, Stop::ToolUse);
        assert_eq!(call.name, "get_weather");
        assert_eq!(reply.text(), "I'll use get_weather for that.");
        let joined: String = call.pieces.concat();
        assert_eq!(serde_json::from_str::<Value>(&joined).unwrap(), call.input);
        assert_eq!(
            call.input["units"], "c",
            "an optional enum: its first value"
        );
        assert_eq!(call.input["limit"], 7, "an optional field's default");
        assert!(call.input["city"].is_string());
        assert!(call.input["days"].is_u64());
        assert!(call.input["detail"].is_boolean());
        assert!(call.input["where"]["lat"].is_f64());
        assert!(call.input["tags"][0].is_string());
        for optional in ["timeout", "background"] {
            assert!(
                call.input.get(optional).is_none(),
                "{optional}: {}",
                call.input
            );
        }

        assert!(Reply::generate(&r, 1, true, false).tokens.is_empty());
        assert!(Reply::generate(&r, 1, false, true).tool_call.is_none());
        r.after_tool_result = true;
        assert!(Reply::generate(&r, 1, true, true).tool_call.is_none());
    }

    /// What Claude Code offers, in its order: the agent tool first.
    fn agent_tools() -> Vec<Tool> {
        let object = |required: Value| {
            json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string"},
                    "description": {"type": "string"},
                    "prompt": {"type": "string"},
                    "run_in_background": {"type": "boolean"},
                },
                "required": required,
            })
        };
        vec![
            Tool {
                name: "Agent".into(),
                schema: object(json!(["description", "prompt"])),
            },
            Tool {
                name: "Bash".into(),
                schema: object(json!(["description", "command"])),
            },
        ]
    }

    #[test]
    fn the_tool_the_user_names_is_called_with_the_value_they_quote() {
        let mut r = request("system prompt naming Bash\nUse the Bash tool to run `echo hi`.");
        r.last_user = "Use the Bash tool to run `echo hi`.".into();
        r.tools = agent_tools();
        let call = Reply::generate(&r, 1, true, true).tool_call.unwrap();
        assert_eq!(call.name, "Bash");
        assert_eq!(
            call.input["description"], "echo hi",
            "the first required string"
        );
        assert_eq!(call.input.as_object().unwrap().len(), 2, "{}", call.input);

        // Named only as part of a word, or not at all: the first tool, as before.
        for text in ["Use Bashful to run `echo hi`", "Run `echo hi`", ""] {
            r.last_user = text.into();
            let call = Reply::generate(&r, 1, true, true).tool_call.unwrap();
            assert_eq!(call.name, "Agent", "{text:?}");
        }
        // Without a quoted value, the required strings are words of the simulator's.
        r.last_user = "Bash please".into();
        let call = Reply::generate(&r, 1, true, true).tool_call.unwrap();
        assert_eq!(call.name, "Bash");
        assert!(WORDS.contains(&call.input["description"].as_str().unwrap()));
        assert!(WORDS.contains(&call.input["command"].as_str().unwrap()));
    }

    #[test]
    fn the_last_complete_code_span_is_the_quoted_value() {
        assert_eq!(quoted("run `a` then `b c`"), Some("b c"));
        assert_eq!(quoted("run `a` then `b"), Some("a"), "an unclosed tick");
        assert_eq!(quoted("run `` or ` `"), None, "empty spans");
        assert_eq!(quoted("no ticks"), None);
        assert_eq!(quoted("`x`"), Some("x"));
    }
}
