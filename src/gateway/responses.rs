//! The OpenAI Responses API on the gateway (`POST /v1/responses`) for targets that speak another
//! protocol (Anthropic Messages, OpenAI Chat Completions): the client's request becomes
//! breakerbox's [`Request`], and the normalized [`StreamEvent`]s go back out as the Responses
//! stream or the whole `response` object.
//!
//! - [`parse_request`]: the body → [`Request`] + [`InboundOptions`] + [`Inbound`] (what the reply
//!   needs beyond the request: the fields the response object echoes, and which tool names stand
//!   for custom or namespaced tools). `input` and `tools` are read one item at a time.
//! - [`ResponsesEncoder`] ([`Encode`]): the stream, `response.created` … one terminal event
//!   (`response.completed`, `response.incomplete` or `response.failed`), every event numbered
//!   by `sequence_number`.
//! - [`whole_response`]: the same fold, as one `response` object (`"stream": false`).
//!
//! Ground truth: the official clients' types (openai-python `types/responses/`, openai-node
//! `resources/responses/responses.ts`) and what Codex sends and reads (`codex-rs`).
//!
//! What cannot cross to another provider is refused with a 400 naming the field (state stored at
//! OpenAI: `previous_response_id`, `conversation`, `prompt`, `background`, `item_reference`,
//! `file_id`), or dropped where dropping keeps an agent working (`reasoning` items, the records of
//! OpenAI-hosted tool runs, and the `web_search`, `image_generation` and `tool_search` tools): the
//! table in docs/gateway.md says which.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::wire::{
    self, Encode, InboundOptions, WireError, as_array, as_object, describe, get, opt_bool, opt_str,
    req_str,
};
use crate::json;
use crate::provider::{
    Content, ErrorClass, Message, ProviderError, Request, Role, StopReason, StreamEvent,
    ToolChoice, ToolDef, Usage,
};

/// The top-level fields the parser reads as values (`input` and `tools` are walked item by item).
const READ_FIELDS: &[&str] = &[
    "model",
    "instructions",
    "max_output_tokens",
    "temperature",
    "top_p",
    "tool_choice",
    "parallel_tool_calls",
    "stream",
    "metadata",
    "user",
    "safety_identifier",
    "previous_response_id",
    "conversation",
    "prompt",
    "background",
    "store",
    "reasoning",
    "text",
];

/// What a reply to a Responses request needs beyond the [`Request`].
#[derive(Debug, Clone, Default)]
pub struct Inbound {
    /// The request's fields that the response object repeats (`instructions`, `tools`,
    /// `tool_choice`, `temperature`, …), as the client sent them or their defaults.
    echo: Map<String, Value>,
    /// Tool names as the target knows them → the tool the client offered, for the tools that are
    /// not plain top-level functions (custom tools, tools inside a namespace).
    tools: HashMap<String, ToolOrigin>,
}

/// A tool the target knows by another name or shape than the client does.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ToolOrigin {
    /// The name the client gave it.
    name: String,
    /// The namespace it sits in (Codex groups MCP tools so).
    namespace: Option<String>,
    /// A `custom` tool: free text in, offered to the target as a function of `{"input": string}`,
    /// and its calls go back as `custom_tool_call` items.
    custom: bool,
}

/// The name a target knows a namespaced tool by: namespace and name joined (with `__` unless the
/// namespace already ends in `_`, as Codex's `mcp__server__` namespaces do).
fn flat_name(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        None | Some("") => name.to_string(),
        Some(ns) if ns.ends_with('_') => format!("{ns}{name}"),
        Some(ns) => format!("{ns}__{name}"),
    }
}

/// A request whose state lives at OpenAI: it cannot be answered by another provider.
fn stored_at_openai(param: impl Into<String>, what: &str, instead: &str) -> WireError {
    WireError::field(
        param,
        format!(
            "{what} is stored at OpenAI and cannot cross to another provider (this route has no \
             target of protocol `openai_responses`); {instead}"
        ),
    )
    .crossing()
}

/// Parse a Responses API request body (`POST /v1/responses`).
pub fn parse_request(body: &[u8]) -> Result<(Request, InboundOptions, Inbound), WireError> {
    let (fields, obj) = wire::parse_object_reading(body, READ_FIELDS)?;
    let model = req_str(&obj, "model", "model")?.to_string();
    refuse_stored_state(&obj)?;

    let mut inbound = Inbound::default();
    let (mut tools, tools_echo) = parse_tools(&fields, &mut inbound)?;
    let mut system: Vec<String> = Vec::new();
    let instructions = opt_str(&obj, "instructions", "instructions")?;
    system.extend(instructions.filter(|t| !t.is_empty()).map(str::to_string));
    let messages = parse_input(&fields, &mut system, &mut tools, &mut inbound)?;
    if messages.is_empty() {
        return Err(WireError::field(
            "input",
            "has no user or assistant content (send a string, or message items)",
        ));
    }

    let stream = opt_bool(&obj, "stream", "stream")?.unwrap_or(false);
    let tool_choice = parse_tool_choice(&obj)?;
    let parallel_tool_calls = opt_bool(&obj, "parallel_tool_calls", "parallel_tool_calls")?;
    let safety_identifier = opt_str(&obj, "safety_identifier", "safety_identifier")?;
    let user = opt_str(&obj, "user", "user")?;
    let request = Request {
        model: model.clone(),
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        messages: wire::shrunk(messages),
        tools,
        max_tokens: wire::max_tokens(&obj, &["max_output_tokens"])?,
        temperature: wire::temperature(&obj)?,
        top_p: wire::top_p(&obj)?,
        stop: Vec::new(),
        tool_choice,
        parallel_tool_calls,
        top_k: None,
        user: safety_identifier.or(user).map(str::to_string),
        credentials: None,
        as_requested: None,
        reasoning_effort: get(&obj, "reasoning")
            .and_then(|r| r.get("effort"))
            .and_then(Value::as_str)
            .map(str::to_string),
        output_format: get(&obj, "text")
            .and_then(|t| t.get("format"))
            .and_then(crate::provider::OutputFormat::from_openai),
        original: None,
        prefill: None,
    };
    inbound.echo = echo(
        &obj,
        Echoed {
            instructions,
            tools: tools_echo,
            parallel_tool_calls,
            user,
            safety_identifier,
        },
    );
    Ok((
        request,
        InboundOptions {
            stream,
            include_usage: true,
            model,
        },
        inbound,
    ))
}

/// What a request asks of state kept at OpenAI, refused: no other provider has it.
fn refuse_stored_state(obj: &Map<String, Value>) -> Result<(), WireError> {
    if get(obj, "previous_response_id").is_some() {
        return Err(stored_at_openai(
            "previous_response_id",
            "the conversation state of a previous response",
            "send the whole conversation in `input` instead (with `store: false`, as Codex does)",
        ));
    }
    if get(obj, "conversation").is_some() {
        return Err(stored_at_openai(
            "conversation",
            "a conversation",
            "send the whole conversation in `input` instead",
        ));
    }
    if get(obj, "prompt").is_some() {
        return Err(stored_at_openai(
            "prompt",
            "a prompt template",
            "send its text as `instructions` and `input` instead",
        ));
    }
    if opt_bool(obj, "background", "background")? == Some(true) {
        return Err(stored_at_openai(
            "background",
            "a background response (run, stored and polled at OpenAI)",
            "send `background: false` (or leave it out) and stream instead",
        ));
    }
    Ok(())
}

/// The fields of a request the response object repeats that the parser has already read.
struct Echoed<'a> {
    instructions: Option<&'a str>,
    /// `tools` as sent.
    tools: Vec<Value>,
    parallel_tool_calls: Option<bool>,
    user: Option<&'a str>,
    safety_identifier: Option<&'a str>,
}

/// The request's fields as the response object repeats them: as the client sent them, or their
/// defaults.
fn echo(obj: &Map<String, Value>, read: Echoed<'_>) -> Map<String, Value> {
    let echoed = |key: &str, default: Value| get(obj, key).cloned().unwrap_or(default);
    let text = |s: Option<&str>| s.map_or(Value::Null, Value::from);
    let mut echo = Map::new();
    echo.insert("instructions".into(), text(read.instructions));
    echo.insert("tools".into(), Value::Array(read.tools));
    echo.insert("tool_choice".into(), echoed("tool_choice", json!("auto")));
    echo.insert(
        "parallel_tool_calls".into(),
        json!(read.parallel_tool_calls.unwrap_or(true)),
    );
    echo.insert("temperature".into(), echoed("temperature", Value::Null));
    echo.insert("top_p".into(), echoed("top_p", Value::Null));
    echo.insert(
        "max_output_tokens".into(),
        echoed("max_output_tokens", Value::Null),
    );
    echo.insert("metadata".into(), echoed("metadata", json!({})));
    echo.insert("previous_response_id".into(), Value::Null);
    echo.insert("reasoning".into(), echoed("reasoning", Value::Null));
    echo.insert(
        "text".into(),
        echoed("text", json!({"format": {"type": "text"}})),
    );
    // Nothing is stored here, whatever was asked.
    echo.insert("store".into(), json!(false));
    echo.insert("background".into(), json!(false));
    echo.insert("truncation".into(), json!("disabled"));
    echo.insert("user".into(), text(read.user));
    echo.insert("safety_identifier".into(), text(read.safety_identifier));
    echo
}

/// `input`: a string (one user message) or a list of items, read one at a time. System and
/// developer messages join `system`, in order.
fn parse_input(
    fields: &json::Fields<'_>,
    system: &mut Vec<String>,
    tools: &mut Vec<ToolDef>,
    inbound: &mut Inbound,
) -> Result<Vec<Message>, WireError> {
    let Some(raw) = fields.raw("input") else {
        return Err(WireError::field(
            "input",
            "required (a string, or a list of items)",
        ));
    };
    let mut messages = Vec::new();
    match json::kind(raw) {
        "a string" => {
            let text = wire::item(raw, "input")?;
            let text = text.as_str().unwrap_or_default().to_string();
            push(
                &mut messages,
                Role::User,
                wire::texts_to_content(vec![text]),
            );
        }
        "an array" => {
            let items = wire::long_array(fields, "input")?.unwrap_or_default();
            for entry in wire::parsed_items(items, "input") {
                let (path, value) = entry?;
                // Codex offers its tools in an item of their own, as a developer would.
                if value.get("type").and_then(Value::as_str) == Some("additional_tools") {
                    let list_path = format!("{path}.tools");
                    let list = value
                        .get("tools")
                        .ok_or_else(|| WireError::field(&list_path, "required"))?;
                    for (j, tool) in as_array(list, &list_path)?.iter().enumerate() {
                        add_tool(tool, &format!("{list_path}[{j}]"), tools, inbound)?;
                    }
                    continue;
                }
                input_item(&value, &path, system, &mut messages)?;
            }
        }
        other => {
            return Err(WireError::field(
                "input",
                format!("expected a string or an array of items, got {other}"),
            ));
        }
    }
    Ok(messages)
}

/// Append `content` as a `role` message. Assistant content in a row (a message, then its
/// function calls, each its own item) is one assistant turn, as both targets want it; user
/// content merges as [`wire::push_message`] merges it (tool results into one turn).
fn push(messages: &mut Vec<Message>, role: Role, content: Vec<Content>) {
    if content.is_empty() {
        return;
    }
    if role == Role::Assistant
        && let Some(last) = messages.last_mut()
        && last.role == Role::Assistant
    {
        last.content.extend(content);
        return;
    }
    wire::push_message(messages, role, content);
}

/// One item of `input`.
fn input_item(
    value: &Value,
    path: &str,
    system: &mut Vec<String>,
    messages: &mut Vec<Message>,
) -> Result<(), WireError> {
    let obj = as_object(value, path)?;
    let at = |field: &str| format!("{path}.{field}");
    // A message may come without `type` (the SDKs' `EasyInputMessage`).
    let kind = opt_str(obj, "type", &at("type"))?.unwrap_or("message");
    match kind {
        "message" => message(obj, path, system, messages)?,
        "function_call" | "custom_tool_call" => {
            let call = tool_call(obj, path, kind == "custom_tool_call")?;
            push(messages, Role::Assistant, vec![call]);
        }
        "function_call_output" | "custom_tool_call_output" => {
            let output = get(obj, "output").unwrap_or(&Value::Null);
            push(
                messages,
                Role::User,
                vec![Content::ToolResult {
                    tool_use_id: req_str(obj, "call_id", &at("call_id"))?.to_string(),
                    content: output_text(output, &at("output"))?,
                    is_error: false,
                }],
            );
        }
        // Reasoning is the answering model's own (encrypted, or in its words): no other model
        // can take it. The records of OpenAI-hosted tool runs carry nothing the conversation
        // needs: the model's next message says what it found.
        "reasoning" | "web_search_call" | "image_generation_call" => {}
        "item_reference" => {
            return Err(stored_at_openai(
                at("type"),
                "an `item_reference` names an item that",
                "send the item itself",
            ));
        }
        other => {
            return Err(WireError::field(
                at("type"),
                format!(
                    "`{other}` items cannot be carried to this gateway's targets (they take \
                     `message`, `function_call`, `function_call_output`, `custom_tool_call` and \
                     `custom_tool_call_output` items; `reasoning`, `web_search_call` and \
                     `image_generation_call` items are dropped)"
                ),
            )
            .crossing());
        }
    }
    Ok(())
}

/// A `function_call` or `custom_tool_call` item as a tool use: a custom tool's free text is the
/// `input` of the function the target was offered for it (see [`tool_def`]).
fn tool_call(obj: &Map<String, Value>, path: &str, custom: bool) -> Result<Content, WireError> {
    let at = |field: &str| format!("{path}.{field}");
    let namespace = opt_str(obj, "namespace", &at("namespace"))?;
    let name = flat_name(namespace, req_str(obj, "name", &at("name"))?);
    let input = if custom {
        json!({ "input": opt_str(obj, "input", &at("input"))?.unwrap_or("") })
    } else {
        wire::tool_arguments(opt_str(obj, "arguments", &at("arguments"))?.unwrap_or(""))
    };
    Ok(Content::ToolUse {
        id: req_str(obj, "call_id", &at("call_id"))?.to_string(),
        name,
        input,
    })
}

/// A `message` item: user and assistant content becomes a message; system and developer content
/// joins the system prompt before the conversation begins, and is kept in place within it.
fn message(
    obj: &Map<String, Value>,
    path: &str,
    system: &mut Vec<String>,
    messages: &mut Vec<Message>,
) -> Result<(), WireError> {
    let role_path = format!("{path}.role");
    let role = match req_str(obj, "role", &role_path)? {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        // Before the conversation: the system prompt; within it: kept in place.
        "system" | "developer" => {
            let texts = parts(obj, path, None)?
                .into_iter()
                .filter(|c| matches!(c, Content::Text { .. }));
            if messages.is_empty() {
                system.extend(texts.filter_map(|c| match c {
                    Content::Text { text } => Some(text),
                    _ => None,
                }));
            } else {
                push(messages, Role::System, texts.collect());
            }
            return Ok(());
        }
        other => {
            return Err(WireError::field(
                role_path,
                format!(
                    "unsupported role `{other}` (expected user, assistant, system or developer)"
                ),
            ));
        }
    };
    let content = parts(obj, path, Some(role))?;
    push(messages, role, content);
    Ok(())
}

/// A message's `content`: a string or a list of parts. Images are taken in user messages only
/// (`role` `Some(User)`); `None` is a system or developer message, text only.
fn parts(
    obj: &Map<String, Value>,
    path: &str,
    role: Option<Role>,
) -> Result<Vec<Content>, WireError> {
    let content_path = format!("{path}.content");
    let parts = match get(obj, "content") {
        None => return Err(WireError::field(content_path, "required")),
        Some(Value::String(s)) => return Ok(wire::texts_to_content(vec![s.clone()])),
        Some(value) => as_array(value, &content_path)?,
    };
    let mut content = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let part_path = format!("{content_path}[{j}]");
        let at = |field: &str| format!("{part_path}.{field}");
        let part = as_object(part, &part_path)?;
        match req_str(part, "type", &at("type"))? {
            "input_text" | "output_text" | "text" | "summary_text" => {
                content.extend(wire::texts_to_content(vec![
                    req_str(part, "text", &at("text"))?.to_string(),
                ]))
            }
            "refusal" => content.extend(wire::texts_to_content(vec![
                req_str(part, "refusal", &at("refusal"))?.to_string(),
            ])),
            "input_image" => {
                if role != Some(Role::User) {
                    return Err(WireError::field(
                        at("type"),
                        "images are carried in user messages only",
                    ));
                }
                match opt_str(part, "image_url", &at("image_url"))? {
                    Some(url) => content.push(Content::Image {
                        url: url.to_string(),
                    }),
                    None if get(part, "file_id").is_some() => {
                        return Err(stored_at_openai(
                            at("file_id"),
                            "a file named by `file_id`",
                            "send the image as `image_url` (a URL, or a `data:` URL with the image)",
                        ));
                    }
                    None => return Err(WireError::field(at("image_url"), "required")),
                }
            }
            // A file's bytes or where it is; one named by `file_id` is stored at OpenAI.
            "input_file" if role == Some(Role::User) => {
                let filename = opt_str(part, "filename", &at("filename"))?.map(str::to_string);
                let data = opt_str(part, "file_data", &at("file_data"))?;
                match data.or(opt_str(part, "file_url", &at("file_url"))?) {
                    Some(url) => content.push(Content::File {
                        url: url.to_string(),
                        filename,
                    }),
                    None => {
                        return Err(stored_at_openai(
                            at("file_id"),
                            "a file named by `file_id`",
                            "send the file as `file_data` (a `data:` URL) or `file_url`",
                        ));
                    }
                }
            }
            other => {
                return Err(WireError::field(
                    at("type"),
                    format!(
                        "`{other}` content is not supported by this gateway (it takes \
                         input_text, output_text, refusal, input_image and input_file parts)"
                    ),
                )
                .crossing());
            }
        }
    }
    Ok(content)
}

/// A tool call's `output`: a string, or a list of text parts (joined).
fn output_text(value: &Value, path: &str) -> Result<String, WireError> {
    match value {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut texts = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                let part_path = format!("{path}[{j}]");
                let part = as_object(part, &part_path)?;
                let kind = req_str(part, "type", &format!("{part_path}.type"))?;
                if !matches!(kind, "input_text" | "output_text" | "text") {
                    return Err(WireError::field(
                        format!("{part_path}.type"),
                        format!(
                            "`{kind}` parts in a tool's output are not supported by this gateway \
                             (text only: a tool result carries text to the other protocols)"
                        ),
                    )
                    .crossing());
                }
                texts.push(req_str(part, "text", &format!("{part_path}.text"))?);
            }
            Ok(texts.join("\n"))
        }
        other => Err(WireError::field(
            path,
            format!("expected a string or an array, got {}", describe(other)),
        )),
    }
}

/// `tools`, read one at a time: the definitions for the target, and the list as sent (the
/// response object repeats it).
fn parse_tools(
    fields: &json::Fields<'_>,
    inbound: &mut Inbound,
) -> Result<(Vec<ToolDef>, Vec<Value>), WireError> {
    let mut tools = Vec::new();
    let mut echo = Vec::new();
    let items = wire::long_array(fields, "tools")?.unwrap_or_default();
    for entry in wire::parsed_items(items, "tools") {
        let (path, value) = entry?;
        add_tool(&value, &path, &mut tools, inbound)?;
        echo.push(value);
    }
    Ok((tools, echo))
}

/// One tool as the target's tools (none for the built-in tools that are dropped).
fn add_tool(
    value: &Value,
    path: &str,
    tools: &mut Vec<ToolDef>,
    inbound: &mut Inbound,
) -> Result<(), WireError> {
    let tool = as_object(value, path)?;
    let kind = opt_str(tool, "type", &format!("{path}.type"))?.unwrap_or("function");
    match kind {
        "function" | "custom" => {
            tools.push(tool_def(tool, path, None, inbound)?);
        }
        // Codex groups tools (its MCP servers' among them) in namespaces.
        "namespace" => {
            let namespace = req_str(tool, "name", &format!("{path}.name"))?;
            let inner_path = format!("{path}.tools");
            let inner =
                get(tool, "tools").ok_or_else(|| WireError::field(&inner_path, "required"))?;
            for (j, inner) in as_array(inner, &inner_path)?.iter().enumerate() {
                let tool_path = format!("{inner_path}[{j}]");
                let inner = as_object(inner, &tool_path)?;
                tools.push(tool_def(inner, &tool_path, Some(namespace), inbound)?);
            }
        }
        // OpenAI runs these itself; without them the model cannot search the web, draw or
        // look up deferred tools, and otherwise works as before (Codex offers web_search by
        // default, and must keep working through the gateway).
        "image_generation" | "tool_search" => {}
        search if search.starts_with("web_search") => {}
        other => {
            return Err(WireError::field(
                format!("{path}.type"),
                format!(
                    "the built-in tool `{other}` runs at OpenAI and cannot be carried to this \
                     gateway's targets (they take `function`, `custom` and `namespace` tools; \
                     `web_search`, `image_generation` and `tool_search` are dropped); remove it"
                ),
            )
            .crossing());
        }
    }
    Ok(())
}

/// A `function` or `custom` tool (top-level or inside `namespace`) as a target's tool.
fn tool_def(
    tool: &Map<String, Value>,
    path: &str,
    namespace: Option<&str>,
    inbound: &mut Inbound,
) -> Result<ToolDef, WireError> {
    let at = |field: &str| format!("{path}.{field}");
    let kind = opt_str(tool, "type", &at("type"))?.unwrap_or("function");
    let name = req_str(tool, "name", &at("name"))?;
    let description = opt_str(tool, "description", &at("description"))?.unwrap_or("");
    let flat = flat_name(namespace, name);
    let custom = match kind {
        "function" => false,
        "custom" => true,
        other => {
            return Err(WireError::field(
                at("type"),
                format!("unsupported tool type `{other}` here (expected function or custom)"),
            )
            .crossing());
        }
    };
    if custom || namespace.is_some() {
        inbound.tools.insert(
            flat.clone(),
            ToolOrigin {
                name: name.to_string(),
                namespace: namespace.map(str::to_string),
                custom,
            },
        );
    }
    if !custom {
        return Ok(ToolDef {
            name: flat,
            description: description.to_string(),
            input_schema: get(tool, "parameters")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        });
    }
    // A custom tool takes free text, optionally in a grammar: the target gets a function of one
    // string, told the grammar in its description.
    let mut description = description.to_string();
    if let Some(Value::Object(format)) = get(tool, "format")
        && format.get("type").and_then(Value::as_str) == Some("grammar")
    {
        let syntax = format.get("syntax").and_then(Value::as_str).unwrap_or("");
        let definition = format.get("definition").and_then(Value::as_str);
        if let Some(definition) = definition {
            description.push_str(&format!(
                "\n\nThe `input` must follow this {syntax} grammar:\n{definition}"
            ));
        }
    }
    Ok(ToolDef {
        name: flat,
        description,
        input_schema: json!({
            "type": "object",
            "properties": {"input": {"type": "string", "description": "The tool's input, as free text."}},
            "required": ["input"],
            "additionalProperties": false,
        }),
    })
}

/// `tool_choice`: `auto`, `none`, `required`, `{"type": "function" | "custom", "name"}` or
/// `{"type": "allowed_tools", "mode"}` (the mode only: every offered tool stays offered).
fn parse_tool_choice(obj: &Map<String, Value>) -> Result<Option<ToolChoice>, WireError> {
    let Some(value) = get(obj, "tool_choice") else {
        return Ok(None);
    };
    let mode = |mode: &str, path: &str| match mode {
        "auto" => Ok(ToolChoice::Auto),
        "none" => Ok(ToolChoice::None),
        "required" => Ok(ToolChoice::Any),
        other => Err(WireError::field(
            path,
            format!("unknown value `{other}` (expected auto, none, required or an object)"),
        )),
    };
    match value {
        Value::String(s) => mode(s, "tool_choice").map(Some),
        Value::Object(choice) => match req_str(choice, "type", "tool_choice.type")? {
            "function" | "custom" => Ok(Some(ToolChoice::Tool {
                name: req_str(choice, "name", "tool_choice.name")?.to_string(),
            })),
            "allowed_tools" => mode(
                req_str(choice, "mode", "tool_choice.mode")?,
                "tool_choice.mode",
            )
            .map(Some),
            other => Err(WireError::field(
                "tool_choice.type",
                format!(
                    "`{other}` names a tool that runs at OpenAI, which this gateway's targets do \
                     not have (expected function, custom or allowed_tools)"
                ),
            )),
        },
        other => Err(WireError::field(
            "tool_choice",
            format!("expected a string or an object, got {}", describe(other)),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// The reply
// ---------------------------------------------------------------------------------------------

/// The events' numbering, and the frames (none when folding a whole response).
#[derive(Debug)]
struct Frames {
    sequence: u64,
    on: bool,
}

impl Frames {
    /// `event: TYPE` + `data: JSON` whose `type` is TYPE, numbered.
    fn emit(&mut self, out: &mut Vec<String>, kind: &str, data: Value) {
        let sequence = self.sequence;
        self.sequence += 1;
        if !self.on {
            return;
        }
        out.push(crate::protocol::responses::event_frame(
            kind, sequence, data,
        ));
    }
}

/// One content part of a message being written.
#[derive(Debug)]
struct Part {
    refusal: bool,
    text: String,
}

impl Part {
    fn json(&self) -> Value {
        if self.refusal {
            json!({"type": "refusal", "refusal": self.text})
        } else {
            crate::protocol::responses::output_text_part(&self.text)
        }
    }
}

#[derive(Debug)]
struct Call {
    id: String,
    call_id: String,
    /// The name the target used.
    flat: String,
    origin: Option<ToolOrigin>,
    arguments: String,
}

impl Call {
    fn custom(&self) -> bool {
        self.origin.as_ref().is_some_and(|o| o.custom)
    }

    /// The item, with `arguments` (or a custom tool's `input`) as given.
    fn item(&self, status: &str, arguments: &str) -> Value {
        let name = self.origin.as_ref().map_or(self.flat.as_str(), |o| &o.name);
        let mut item = if self.custom() {
            json!({"id": self.id, "type": "custom_tool_call", "call_id": self.call_id,
                   "name": name, "input": arguments})
        } else {
            crate::protocol::responses::function_call_item(
                &self.id,
                status,
                &self.call_id,
                name,
                arguments,
            )
        };
        if let Some(namespace) = self.origin.as_ref().and_then(|o| o.namespace.as_ref()) {
            item["namespace"] = json!(namespace);
        }
        item
    }
}

/// An output item still being written.
#[derive(Debug)]
enum Open {
    /// Its last part is the one being written.
    Message {
        id: String,
        parts: Vec<Part>,
    },
    Reasoning {
        id: String,
        text: String,
    },
    Call(Call),
}

#[derive(Debug)]
enum Slot {
    Open(Open),
    Done(Value),
}

/// Our stream events → the Responses API stream.
///
/// Nothing goes out before the first content (or the end), so `response.created` names the model
/// that answers. Text and refusals are parts of one `message` item; reasoning (`ThinkingDelta`)
/// is a `reasoning` item whose text is a summary part — Claude's thinking is itself a summary,
/// and a summary is what Codex shows by default; each tool call is a `function_call` item, or a
/// `custom_tool_call` for a custom tool (its input buffered until the call is complete, then sent
/// as one delta). A tool call stays open until the end; a message or reasoning item closes when
/// something else begins. Arguments are always valid JSON (`{}` when the model sent none).
#[derive(Debug)]
pub struct ResponsesEncoder {
    inbound: Arc<Inbound>,
    id: String,
    model: String,
    created_at: u64,
    frames: Frames,
    started: bool,
    finished: bool,
    usage: Usage,
    output: Vec<Slot>,
    /// Our tool call index → its position in `output`.
    calls: HashMap<u32, usize>,
    /// A refusal went out: the reply is complete, not filtered (as OpenAI ends its refusals).
    refused: bool,
    /// The terminal response object, kept when folding a whole response.
    result: Option<Value>,
    /// The upstream's own events are going out (a passthrough): the normalized events they
    /// cover are not encoded again.
    raw: bool,
}

impl ResponsesEncoder {
    /// `model` is used until a `MessageStart` names the model that actually answers.
    pub fn new(model: impl Into<String>, inbound: Arc<Inbound>) -> Self {
        ResponsesEncoder {
            inbound,
            id: wire::new_id("resp_"),
            model: model.into(),
            created_at: wire::unix_now(),
            frames: Frames {
                sequence: 0,
                on: true,
            },
            started: false,
            finished: false,
            usage: Usage::default(),
            output: Vec::new(),
            calls: HashMap::new(),
            refused: false,
            result: None,
            raw: false,
        }
    }

    /// The response object as it stands, with the items done so far.
    fn object(&self, status: &str) -> Value {
        let output: Vec<Value> = self
            .output
            .iter()
            .filter_map(|slot| match slot {
                Slot::Done(item) => Some(item.clone()),
                Slot::Open(_) => None,
            })
            .collect();
        let mut object = json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "model": self.model,
            "output": output,
            "usage": Value::Null,
            "error": Value::Null,
            "incomplete_details": Value::Null,
        });
        if let Some(obj) = object.as_object_mut() {
            for (key, value) in &self.inbound.echo {
                obj.insert(key.clone(), value.clone());
            }
        }
        object
    }

    fn start(&mut self, out: &mut Vec<String>) {
        if self.started {
            return;
        }
        self.started = true;
        let object = self.object("in_progress");
        self.frames
            .emit(out, "response.created", json!({"response": object.clone()}));
        self.frames
            .emit(out, "response.in_progress", json!({"response": object}));
    }

    /// Close every open item that `close` picks, with `status`, in output order.
    fn close_where(&mut self, out: &mut Vec<String>, status: &str, close: fn(&Open) -> bool) {
        for index in 0..self.output.len() {
            if matches!(&self.output[index], Slot::Open(open) if close(open)) {
                let slot = std::mem::replace(&mut self.output[index], Slot::Done(Value::Null));
                if let Slot::Open(open) = slot {
                    let item = self.close(out, index, open, status);
                    self.output[index] = Slot::Done(item);
                }
            }
        }
    }

    /// The closing events of one item; its final JSON.
    fn close(&mut self, out: &mut Vec<String>, index: usize, open: Open, status: &str) -> Value {
        let item = match open {
            Open::Message { id, parts } => {
                if let Some(part) = parts.last() {
                    self.close_part(out, &id, index, parts.len() - 1, part);
                }
                let content: Vec<Value> = parts.iter().map(Part::json).collect();
                crate::protocol::responses::message_item(&id, status, content)
            }
            Open::Reasoning { id, text } => {
                let common = json!({"item_id": id, "output_index": index, "summary_index": 0});
                self.frames.emit(
                    out,
                    "response.reasoning_summary_text.done",
                    with(&common, "text", json!(text)),
                );
                let part = json!({"type": "summary_text", "text": text});
                self.frames.emit(
                    out,
                    "response.reasoning_summary_part.done",
                    with(&common, "part", part.clone()),
                );
                json!({"id": id, "type": "reasoning", "summary": [part]})
            }
            Open::Call(call) => {
                let common = json!({"item_id": call.id, "output_index": index});
                if call.custom() {
                    let input = custom_input(&call.arguments);
                    if !input.is_empty() {
                        self.frames.emit(
                            out,
                            "response.custom_tool_call_input.delta",
                            with(&common, "delta", json!(input)),
                        );
                    }
                    self.frames.emit(
                        out,
                        "response.custom_tool_call_input.done",
                        with(&common, "input", json!(input)),
                    );
                    call.item(status, &input)
                } else {
                    let arguments = if call.arguments.trim().is_empty() {
                        "{}"
                    } else {
                        call.arguments.as_str()
                    };
                    self.frames.emit(
                        out,
                        "response.function_call_arguments.done",
                        with(&common, "arguments", json!(arguments)),
                    );
                    call.item(status, arguments)
                }
            }
        };
        self.frames.emit(
            out,
            "response.output_item.done",
            json!({"output_index": index, "item": item.clone()}),
        );
        item
    }

    fn close_part(
        &mut self,
        out: &mut Vec<String>,
        id: &str,
        index: usize,
        content_index: usize,
        part: &Part,
    ) {
        let common = json!({"item_id": id, "output_index": index, "content_index": content_index});
        if part.refusal {
            self.frames.emit(
                out,
                "response.refusal.done",
                with(&common, "refusal", json!(part.text)),
            );
        } else {
            let mut done = with(&common, "text", json!(part.text));
            done["logprobs"] = json!([]);
            self.frames.emit(out, "response.output_text.done", done);
        }
        self.frames.emit(
            out,
            "response.content_part.done",
            with(&common, "part", part.json()),
        );
    }

    /// Add an output item (announced as `added`); its position.
    fn add(&mut self, out: &mut Vec<String>, open: Open, added: Value) -> usize {
        let index = self.output.len();
        self.output.push(Slot::Open(open));
        self.frames.emit(
            out,
            "response.output_item.added",
            json!({"output_index": index, "item": added}),
        );
        index
    }

    /// Text (or a refusal): into the open message, in a part of its kind.
    fn text(&mut self, out: &mut Vec<String>, text: &str, refusal: bool) {
        self.start(out);
        let index = match self.output.last() {
            Some(Slot::Open(Open::Message { .. })) => self.output.len() - 1,
            _ => {
                self.close_where(out, "completed", |o| !matches!(o, Open::Call(_)));
                let id = wire::new_id("msg_");
                let added =
                    crate::protocol::responses::message_item(&id, "in_progress", Vec::new());
                self.add(
                    out,
                    Open::Message {
                        id,
                        parts: Vec::new(),
                    },
                    added,
                )
            }
        };
        let Some(Slot::Open(Open::Message { id, parts })) = self.output.get_mut(index) else {
            return;
        };
        let id = id.clone();
        if parts.last().map(|p| p.refusal) != Some(refusal) {
            let previous = parts.len().checked_sub(1).map(|last| {
                let part = Part {
                    refusal: parts[last].refusal,
                    text: parts[last].text.clone(),
                };
                (last, part)
            });
            parts.push(Part {
                refusal,
                text: String::new(),
            });
            let content_index = parts.len() - 1;
            let added = parts[content_index].json();
            if let Some((last, part)) = previous {
                self.close_part(out, &id, index, last, &part);
            }
            self.frames.emit(
                out,
                "response.content_part.added",
                json!({"item_id": id, "output_index": index, "content_index": content_index,
                       "part": added}),
            );
        }
        let Some(Slot::Open(Open::Message { parts, .. })) = self.output.get_mut(index) else {
            return;
        };
        let content_index = parts.len() - 1;
        if let Some(part) = parts.last_mut() {
            part.text.push_str(text);
        }
        let common = json!({"item_id": id, "output_index": index, "content_index": content_index});
        if refusal {
            self.frames.emit(
                out,
                "response.refusal.delta",
                with(&common, "delta", json!(text)),
            );
        } else {
            let mut delta = with(&common, "delta", json!(text));
            delta["logprobs"] = json!([]);
            self.frames.emit(out, "response.output_text.delta", delta);
        }
    }

    fn thinking(&mut self, out: &mut Vec<String>, text: &str) {
        self.start(out);
        let index = match self.output.last() {
            Some(Slot::Open(Open::Reasoning { .. })) => self.output.len() - 1,
            _ => {
                self.close_where(out, "completed", |o| !matches!(o, Open::Call(_)));
                let id = wire::new_id("rs_");
                let added = json!({"id": id, "type": "reasoning", "summary": []});
                let index = self.add(
                    out,
                    Open::Reasoning {
                        id: id.clone(),
                        text: String::new(),
                    },
                    added,
                );
                self.frames.emit(
                    out,
                    "response.reasoning_summary_part.added",
                    json!({"item_id": id, "output_index": index, "summary_index": 0,
                           "part": {"type": "summary_text", "text": ""}}),
                );
                index
            }
        };
        let Some(Slot::Open(Open::Reasoning { id, text: so_far })) = self.output.get_mut(index)
        else {
            return;
        };
        so_far.push_str(text);
        let id = id.clone();
        self.frames.emit(
            out,
            "response.reasoning_summary_text.delta",
            json!({"item_id": id, "output_index": index, "summary_index": 0, "delta": text}),
        );
    }

    fn tool_start(&mut self, out: &mut Vec<String>, index: u32, call_id: &str, name: &str) {
        self.start(out);
        self.close_where(out, "completed", |o| !matches!(o, Open::Call(_)));
        let origin = self.inbound.tools.get(name).cloned();
        let custom = origin.as_ref().is_some_and(|o| o.custom);
        let call = Call {
            id: wire::new_id(if custom { "ctc_" } else { "fc_" }),
            call_id: if call_id.is_empty() {
                wire::new_id("call_")
            } else {
                call_id.to_string()
            },
            flat: name.to_string(),
            origin,
            arguments: String::new(),
        };
        let added = call.item("in_progress", "");
        let position = self.add(out, Open::Call(call), added);
        self.calls.insert(index, position);
    }

    fn tool_delta(&mut self, out: &mut Vec<String>, index: u32, partial_json: &str) {
        self.start(out);
        let Some(&position) = self.calls.get(&index) else {
            return;
        };
        let Some(Slot::Open(Open::Call(call))) = self.output.get_mut(position) else {
            return;
        };
        call.arguments.push_str(partial_json);
        if !call.custom() && !partial_json.is_empty() {
            let id = call.id.clone();
            self.frames.emit(
                out,
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": position, "delta": partial_json}),
            );
        }
    }

    /// The terminal event (`response.completed`, `.incomplete` or `.failed`) with `object`.
    fn end(&mut self, out: &mut Vec<String>, kind: &str, object: Value) {
        self.finished = true;
        if self.frames.on {
            self.frames.emit(out, kind, json!({"response": object}));
        } else {
            self.result = Some(object);
        }
    }

    fn done(&mut self, out: &mut Vec<String>, stop_reason: StopReason) {
        self.start(out);
        let incomplete =
            crate::protocol::responses::wire_incomplete_reason(stop_reason, self.refused);
        let status = if incomplete.is_some() {
            "incomplete"
        } else {
            "completed"
        };
        self.close_where(out, status, |_| true);
        let mut object = self.object(status);
        object["usage"] = crate::protocol::responses::usage_json(&self.usage);
        if let Some(reason) = incomplete {
            object["incomplete_details"] = json!({ "reason": reason });
        }
        self.end(out, &format!("response.{status}"), object);
    }
}

/// `base` (an object) with one more field.
fn with(base: &Value, key: &str, value: Value) -> Value {
    let mut out = base.clone();
    out[key] = value;
    out
}

/// A custom tool's input from the arguments the target wrote for it (`{"input": "…"}`); other
/// JSON is passed on as written, so nothing the model said is lost.
fn custom_input(arguments: &str) -> String {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(mut obj)) => match obj.remove("input") {
            Some(Value::String(input)) => input,
            Some(other) => other.to_string(),
            None => arguments.to_string(),
        },
        Ok(Value::String(input)) => input,
        _ => arguments.to_string(),
    }
}

impl Encode for ResponsesEncoder {
    /// The frames for one event. [`StreamEvent::Rewind`] is ignored (the gateway decides what a
    /// rewind means); events after the end produce nothing.
    fn event(&mut self, event: &StreamEvent) -> Vec<String> {
        let mut out = Vec::new();
        if self.finished || (self.raw && wire::covered(event)) {
            return out;
        }
        match event {
            StreamEvent::Wire { event, data } => return self.wire(event.as_deref(), data),
            // The upstream's items are not this encoder's to extend: a Responses stream passed
            // through ends, failed, where another attempt would have to be spliced on.
            StreamEvent::Spliced if self.raw => {
                self.raw = false;
                return self.error(&ProviderError::new(
                    "gateway",
                    ErrorClass::StreamCut,
                    crate::provider::Phase::MidStream,
                    "the upstream reply was cut, and a Responses stream passed through cannot be \
                     continued by another attempt",
                ));
            }
            StreamEvent::Spliced => {}
            // The terminal response object names the model that finished the reply.
            StreamEvent::ContinuedBy { model } => {
                if !model.is_empty() {
                    self.model = model.clone();
                }
            }
            StreamEvent::MessageStart { model, .. } => {
                if !self.started && !model.is_empty() {
                    self.model = model.clone();
                }
            }
            StreamEvent::Usage(usage) => self.usage = *usage,
            StreamEvent::TextDelta { text } => {
                if !text.is_empty() {
                    self.text(&mut out, text, false);
                }
            }
            StreamEvent::RefusalDelta { text } => {
                if !text.is_empty() {
                    self.refused = true;
                    self.text(&mut out, text, true);
                }
            }
            StreamEvent::ThinkingDelta { text } => {
                if !text.is_empty() {
                    self.thinking(&mut out, text);
                }
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.tool_start(&mut out, *index, id, name);
            }
            StreamEvent::ToolCallDelta {
                index,
                partial_json,
            } => self.tool_delta(&mut out, *index, partial_json),
            StreamEvent::Rewind { .. } | StreamEvent::RateLimits(_) => {}
            StreamEvent::Done { stop_reason, .. } => self.done(&mut out, *stop_reason),
        }
        out
    }

    /// An upstream Responses event as it arrived: numbered as the upstream numbered it (events
    /// this encoder adds after it, an error, continue the count), its response id and model
    /// adopted from `response.created`.
    fn wire(&mut self, event: Option<&str>, data: &str) -> Vec<String> {
        if self.finished {
            return Vec::new();
        }
        self.raw = true;
        #[derive(serde::Deserialize)]
        struct Frame {
            #[serde(rename = "type")]
            kind: Option<String>,
            sequence_number: Option<u64>,
            response: Option<Created>,
        }
        #[derive(serde::Deserialize)]
        struct Created {
            id: Option<String>,
            model: Option<String>,
            created_at: Option<u64>,
        }
        // The response's own events, not its items' (an upstream `response.failed` or `error`
        // never comes here: it fails the attempt, and its frame with it).
        let lifecycle = |kind: &str| {
            kind.starts_with("response.")
                && !kind.contains("delta")
                && !kind.starts_with("response.output")
        };
        if (event.is_none() || event.is_some_and(lifecycle))
            && let Ok(frame) = serde_json::from_str::<Frame>(data)
        {
            if let Some(n) = frame.sequence_number {
                self.frames.sequence = self.frames.sequence.max(n);
            }
            match frame.kind.as_deref().or(event) {
                Some("response.created" | "response.in_progress") => {
                    self.started = true;
                    if let Some(created) = frame.response {
                        self.id = created.id.unwrap_or_else(|| self.id.clone());
                        self.model = created.model.unwrap_or_else(|| self.model.clone());
                        self.created_at = created.created_at.unwrap_or(self.created_at);
                    }
                }
                Some("response.completed" | "response.incomplete") => self.finished = true,
                _ => {}
            }
        }
        self.frames.sequence = self.frames.sequence.saturating_add(1);
        vec![wire::sse_frame(event, data)]
    }

    /// `response.failed` with the error; never `response.completed`. Items still open are not
    /// closed: a half-written tool call must not look complete (an agent would run it).
    fn error(&mut self, err: &ProviderError) -> Vec<String> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        self.start(&mut out);
        let mut object = self.object("failed");
        object["usage"] = crate::protocol::responses::usage_json(&self.usage);
        let code = match err.class {
            ErrorClass::RateLimited => "rate_limit_exceeded",
            _ => "server_error",
        };
        object["error"] = json!({"code": code, "message": wire::error_message(err)});
        self.end(&mut out, "response.failed", object);
        out
    }
}

/// A whole `response` object for a reply (`"stream": false`): the stream's fold, from after the
/// last rewind. `model` is used unless a `MessageStart` names the model that answered. A reply
/// without `Done` is `failed` (the gateway does not call this for one).
pub fn whole_response(model: &str, events: &[StreamEvent], inbound: Arc<Inbound>) -> Value {
    let mut encoder = ResponsesEncoder::new(model, inbound);
    encoder.frames.on = false;
    for event in wire::after_last_rewind(events) {
        encoder.event(event);
    }
    if encoder.result.is_none() {
        encoder.error(&wire::upstream_cut());
    }
    encoder.result.take().unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::provider::Phase;

    fn parse(body: Value) -> Result<(Request, InboundOptions, Inbound), WireError> {
        parse_request(body.to_string().as_bytes())
    }

    fn error(body: Value) -> WireError {
        match parse(body) {
            Err(e) => e,
            Ok((request, ..)) => panic!("accepted: {request:?}"),
        }
    }

    /// The frames as (type, data), checking the framing and the numbering on the way.
    fn events(frames: &[String]) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for frame in frames {
            let (head, data) = frame
                .strip_suffix("\n\n")
                .and_then(|f| f.split_once('\n'))
                .expect("event: + data:");
            let kind = head.strip_prefix("event: ").expect("an event line");
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], kind, "{frame}");
            out.push((kind.to_string(), data));
        }
        for (i, (_, data)) in out.iter().enumerate() {
            assert_eq!(data["sequence_number"], i as u64, "numbered from 0: {data}");
        }
        out
    }

    fn encode(inbound: Inbound, stream: &[StreamEvent]) -> Vec<(String, Value)> {
        let mut encoder = ResponsesEncoder::new("asked-model", Arc::new(inbound));
        let frames: Vec<String> = stream.iter().flat_map(|e| encoder.event(e)).collect();
        events(&frames)
    }

    fn kinds(events: &[(String, Value)]) -> Vec<&str> {
        events.iter().map(|(k, _)| k.as_str()).collect()
    }

    fn start() -> StreamEvent {
        StreamEvent::MessageStart {
            id: "msg_up".into(),
            model: "claude-x".into(),
        }
    }

    fn text(t: &str) -> StreamEvent {
        StreamEvent::TextDelta { text: t.into() }
    }

    fn done(stop_reason: StopReason) -> StreamEvent {
        StreamEvent::Done {
            stop_reason,
            raw_stop_reason: None,
        }
    }

    fn tool(index: u32, id: &str, name: &str) -> StreamEvent {
        StreamEvent::ToolCallStart {
            index,
            id: id.into(),
            name: name.into(),
        }
    }

    fn args(index: u32, partial_json: &str) -> StreamEvent {
        StreamEvent::ToolCallDelta {
            index,
            partial_json: partial_json.into(),
        }
    }

    #[test]
    fn a_text_and_tool_reply_follows_the_documented_lifecycle() {
        let events = encode(
            Inbound::default(),
            &[
                start(),
                StreamEvent::Usage(Usage {
                    input_tokens: 10,
                    cache_read_tokens: 90,
                    ..Usage::default()
                }),
                text("Hello"),
                text(" there"),
                tool(0, "toolu_1", "get_weather"),
                args(0, ""),
                args(0, "{\"city\":"),
                args(0, "\"Paris\"}"),
                tool(1, "toolu_2", "no_args"),
                StreamEvent::Usage(Usage {
                    input_tokens: 10,
                    cache_read_tokens: 90,
                    output_tokens: 7,
                    reasoning_tokens: 2,
                    ..Usage::default()
                }),
                done(StopReason::ToolUse),
            ],
        );
        assert_eq!(
            kinds(&events),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.output_item.added",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let created = &events[0].1["response"];
        assert_eq!(created["model"], "claude-x", "the model that answers");
        assert_eq!(created["status"], "in_progress");
        assert!(created["id"].as_str().unwrap().starts_with("resp_"));
        assert_eq!(events[6].1["text"], "Hello there");
        assert_eq!(events[13].1["arguments"], "{\"city\":\"Paris\"}");
        assert_eq!(events[15].1["arguments"], "{}", "no arguments is {{}}");
        let completed = &events[17].1["response"];
        assert_eq!(completed["status"], "completed");
        assert_eq!(completed["id"], created["id"]);
        let output = completed["output"].as_array().unwrap();
        assert_eq!(output.len(), 3);
        assert!(output[0]["id"].as_str().unwrap().starts_with("msg_"));
        assert_eq!(output[0]["content"][0]["text"], "Hello there");
        assert_eq!(output[1]["type"], "function_call");
        assert_eq!(output[1]["call_id"], "toolu_1");
        assert!(output[1]["id"].as_str().unwrap().starts_with("fc_"));
        assert_eq!(output[2]["arguments"], "{}");
        let usage = &completed["usage"];
        assert_eq!(usage["input_tokens"], 100, "cached tokens included");
        assert_eq!(usage["input_tokens_details"]["cached_tokens"], 90);
        assert_eq!(usage["output_tokens_details"]["reasoning_tokens"], 2);
        assert_eq!(usage["total_tokens"], 107);
        // Each item's events name its output index.
        assert_eq!(events[10].1["output_index"], 1);
        assert_eq!(events[12].1["output_index"], 2);
    }

    #[test]
    fn thinking_is_a_reasoning_summary_and_refusals_a_refusal_part() {
        let events = encode(
            Inbound::default(),
            &[
                StreamEvent::ThinkingDelta { text: "hmm".into() },
                text("No"),
                StreamEvent::RefusalDelta {
                    text: "I can't.".into(),
                },
                done(StopReason::ContentFilter),
            ],
        );
        assert_eq!(
            kinds(&events)[2..],
            [
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.content_part.added",
                "response.refusal.delta",
                "response.refusal.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        assert_eq!(events[0].1["response"]["model"], "asked-model");
        let output = &events.last().unwrap().1["response"]["output"];
        assert_eq!(
            output[0]["summary"],
            json!([{"type": "summary_text", "text": "hmm"}])
        );
        assert!(output[0]["id"].as_str().unwrap().starts_with("rs_"));
        assert_eq!(
            output[1]["content"][1],
            json!({"type": "refusal", "refusal": "I can't."})
        );
        assert_eq!(events[13].1["content_index"], 1);
    }

    #[test]
    fn a_cut_off_or_filtered_reply_is_incomplete_with_its_reason() {
        for (stop, reason) in [
            (StopReason::MaxTokens, "max_output_tokens"),
            (StopReason::ContextWindowExceeded, "max_output_tokens"),
            (StopReason::ContentFilter, "content_filter"),
        ] {
            let events = encode(Inbound::default(), &[text("Once upon"), done(stop)]);
            let (kind, last) = events.last().unwrap();
            assert_eq!(kind, "response.incomplete");
            assert_eq!(last["response"]["status"], "incomplete");
            assert_eq!(last["response"]["incomplete_details"]["reason"], reason);
            assert_eq!(last["response"]["output"][0]["status"], "incomplete");
            assert!(!kinds(&events).contains(&"response.completed"));
        }
    }

    #[test]
    fn a_failure_after_the_start_is_response_failed_and_never_completed() {
        let mut encoder = ResponsesEncoder::new("m", Arc::default());
        let mut frames = Vec::new();
        for event in [
            start(),
            text("Half a"),
            tool(0, "call_1", "run"),
            args(0, "{\"cmd\":"),
        ] {
            frames.extend(encoder.event(&event));
        }
        let err = ProviderError::new("p", ErrorClass::StreamCut, Phase::MidStream, "cut off");
        frames.extend(encoder.error(&err));
        // Nothing after the end.
        frames.extend(encoder.event(&done(StopReason::EndTurn)));
        frames.extend(encoder.finish());
        let events = events(&frames);
        let (kind, last) = events.last().unwrap();
        assert_eq!(kind, "response.failed");
        let response = &last["response"];
        assert_eq!(response["status"], "failed");
        assert_eq!(response["error"]["code"], "server_error");
        assert_eq!(response["error"]["message"], "cut off");
        assert!(!kinds(&events).contains(&"response.completed"));
        // The half-written tool call never looks complete.
        assert!(!kinds(&events).contains(&"response.function_call_arguments.done"));
        let output = response["output"].as_array().unwrap();
        assert_eq!(
            output.len(),
            1,
            "the message, closed before the call: {output:?}"
        );
        assert_eq!(output[0]["content"][0]["text"], "Half a");

        // Cut before anything was sent: still a whole stream, created first.
        let mut encoder = ResponsesEncoder::new("m", Arc::default());
        let frames = encoder.finish();
        assert_eq!(
            kinds(&self::events(&frames)),
            [
                "response.created",
                "response.in_progress",
                "response.failed"
            ]
        );
        let mut encoder = ResponsesEncoder::new("m", Arc::default());
        let limited = ProviderError::new("p", ErrorClass::RateLimited, Phase::MidStream, "slow");
        let frames = encoder.error(&limited);
        assert_eq!(
            self::events(&frames)[2].1["response"]["error"]["code"],
            "rate_limit_exceeded"
        );
    }

    #[test]
    fn custom_and_namespaced_tools_go_back_as_the_client_offered_them() {
        let (request, _, inbound) = parse(json!({"model": "m", "input": "hi", "tools": [
            {"type": "custom", "name": "apply_patch", "description": "Patch files.",
             "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"}},
            {"type": "namespace", "name": "mcp__docs__", "description": "Docs.",
             "tools": [{"type": "function", "name": "search", "parameters": {"type": "object"}}]},
            {"type": "namespace", "name": "files",
             "tools": [{"type": "function", "name": "read"}]},
        ]}))
        .unwrap();
        let names: Vec<&str> = request.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["apply_patch", "mcp__docs__search", "files__read"]);
        assert_eq!(
            request.tools[0].input_schema["required"],
            json!(["input"]),
            "a custom tool takes one string"
        );
        assert!(
            request.tools[0]
                .description
                .contains("lark grammar:\nstart: x")
        );
        let events = encode(
            inbound,
            &[
                tool(0, "toolu_a", "apply_patch"),
                args(0, "{\"input\": \"*** Begin"),
                args(0, " Patch\"}"),
                tool(1, "toolu_b", "mcp__docs__search"),
                args(1, "{\"q\":1}"),
                done(StopReason::ToolUse),
            ],
        );
        let custom_done: Vec<&Value> = events
            .iter()
            .filter(|(k, _)| k.starts_with("response.custom_tool_call_input"))
            .map(|(_, d)| d)
            .collect();
        assert_eq!(custom_done.len(), 2, "one delta, then done");
        assert_eq!(custom_done[0]["delta"], "*** Begin Patch");
        assert_eq!(custom_done[1]["input"], "*** Begin Patch");
        let output = &events.last().unwrap().1["response"]["output"];
        assert_eq!(
            (&output[0]["type"], &output[0]["name"], &output[0]["input"]),
            (
                &json!("custom_tool_call"),
                &json!("apply_patch"),
                &json!("*** Begin Patch")
            )
        );
        assert!(output[0]["id"].as_str().unwrap().starts_with("ctc_"));
        assert_eq!(
            (&output[1]["name"], &output[1]["namespace"]),
            (&json!("search"), &json!("mcp__docs__"))
        );
    }

    #[test]
    fn a_whole_response_is_the_fold_after_the_last_rewind() {
        let response = whole_response(
            "asked",
            &[
                text("withdrawn"),
                StreamEvent::Rewind { discarded_chars: 9 },
                StreamEvent::MessageStart {
                    id: String::new(),
                    model: "gpt-5".into(),
                },
                text("kept"),
                done(StopReason::EndTurn),
            ],
            Arc::default(),
        );
        assert_eq!(response["object"], "response");
        assert_eq!(response["status"], "completed");
        assert_eq!(response["model"], "gpt-5");
        assert_eq!(response["output"].as_array().unwrap().len(), 1);
        assert_eq!(response["output"][0]["content"][0]["text"], "kept");
        assert!(response.get("output_text").is_none(), "SDK-side only");
        let cut = whole_response("asked", &[text("half")], Arc::default());
        assert_eq!(cut["status"], "failed");
    }

    #[test]
    fn input_items_become_the_conversation() {
        let (request, options, inbound) = parse(json!({
            "model": "gpt-5", "instructions": "Be brief.", "stream": true,
            "safety_identifier": "u-1", "temperature": 0.5,
            "reasoning": {"effort": "high"}, "store": false, "include": ["reasoning.encrypted_content"],
            "text": {"format": {"type": "json_schema", "name": "x", "schema": {}}},
            "input": [
                {"type": "message", "role": "developer", "content": "Use tools."},
                {"role": "user", "content": [
                    {"type": "input_text", "text": "Look:"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "auto"}]},
                {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
                {"type": "function_call", "call_id": "c1", "name": "get", "arguments": ""},
                {"type": "function_call", "call_id": "c2", "name": "search", "namespace": "mcp__docs__",
                 "arguments": "{\"q\":\"x\"}"},
                {"type": "custom_tool_call", "call_id": "c3", "name": "apply_patch", "input": "*** Begin"},
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
                {"type": "function_call_output", "call_id": "c2",
                 "output": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]},
                {"type": "custom_tool_call_output", "call_id": "c3", "output": "Done!"},
                {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "Late rule."}]},
                {"type": "web_search_call", "id": "ws_1", "status": "completed"},
            ]
        }))
        .unwrap();
        assert!(options.stream && options.include_usage);
        assert_eq!(options.model, "gpt-5");
        // Before the conversation, the system prompt; within it, an instruction kept in place.
        assert_eq!(request.system.as_deref(), Some("Be brief.\n\nUse tools."));
        assert_eq!(
            request.joined_system().as_deref(),
            Some("Be brief.\n\nUse tools.\n\nLate rule.")
        );
        assert_eq!(request.user.as_deref(), Some("u-1"));
        assert_eq!(request.temperature, Some(0.5));
        assert_eq!(request.max_tokens, wire::DEFAULT_MAX_TOKENS);
        let m = &request.messages;
        assert_eq!(
            m.len(),
            4,
            "user, one assistant turn, one turn of results, the late rule: {m:?}"
        );
        assert_eq!(m[3].role, Role::System);
        assert_eq!(
            m[3].content,
            vec![Content::Text {
                text: "Late rule.".into()
            }]
        );
        assert_eq!(
            m[0].content[1],
            Content::Image {
                url: "data:image/png;base64,AAAA".into()
            }
        );
        assert_eq!(m[1].role, Role::Assistant);
        assert_eq!(m[1].content.len(), 4);
        assert_eq!(
            m[1].content[1],
            Content::ToolUse {
                id: "c1".into(),
                name: "get".into(),
                input: json!({})
            }
        );
        assert!(
            matches!(&m[1].content[2], Content::ToolUse { name, .. } if name == "mcp__docs__search")
        );
        assert!(
            matches!(&m[1].content[3], Content::ToolUse { input, .. } if input == &json!({"input": "*** Begin"}))
        );
        let results: Vec<(&str, &str)> = m[2]
            .content
            .iter()
            .filter_map(|c| match c {
                Content::ToolResult {
                    tool_use_id,
                    content,
                    ..
                } => Some((tool_use_id.as_str(), content.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(results, [("c1", "sunny"), ("c2", "a\nb"), ("c3", "Done!")]);
        // The response object repeats what was asked.
        assert_eq!(inbound.echo["instructions"], "Be brief.");
        assert_eq!(inbound.echo["reasoning"], json!({"effort": "high"}));
        assert_eq!(inbound.echo["temperature"], 0.5);

        let (request, options, _) = parse(json!({"model": "m", "input": "Hi there"})).unwrap();
        assert_eq!(*request.messages, vec![Message::user("Hi there")]);
        assert!(!options.stream);
    }

    #[test]
    fn tool_choice_and_limits() {
        let choice = |choice: Value| {
            parse(json!({"model": "m", "input": "x", "tool_choice": choice}))
                .map(|(r, ..)| r.tool_choice)
        };
        assert_eq!(choice(json!("auto")), Ok(Some(ToolChoice::Auto)));
        assert_eq!(choice(json!("none")), Ok(Some(ToolChoice::None)));
        assert_eq!(choice(json!("required")), Ok(Some(ToolChoice::Any)));
        assert_eq!(
            choice(json!({"type": "function", "name": "f"})),
            Ok(Some(ToolChoice::Tool { name: "f".into() }))
        );
        assert_eq!(
            choice(json!({"type": "allowed_tools", "mode": "required", "tools": []})),
            Ok(Some(ToolChoice::Any))
        );
        let err = choice(json!({"type": "file_search"})).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("tool_choice.type"));
        let (request, ..) = parse(json!({"model": "m", "input": "x", "max_output_tokens": 77,
                                         "parallel_tool_calls": false}))
        .unwrap();
        assert_eq!(
            (request.max_tokens, request.parallel_tool_calls),
            (77, Some(false))
        );
    }

    #[test]
    fn what_cannot_cross_is_refused_naming_the_field() {
        let cases = [
            (
                json!({"model": "m", "input": "x", "previous_response_id": "resp_1"}),
                "previous_response_id",
                "stored at OpenAI",
            ),
            (
                json!({"model": "m", "input": "x", "background": true}),
                "background",
                "background",
            ),
            (
                json!({"model": "m", "input": "x", "conversation": "conv_1"}),
                "conversation",
                "stored at OpenAI",
            ),
            (
                json!({"model": "m", "input": [{"role": "user", "content": "a"},
                                               {"type": "local_shell_call", "id": "x"}]}),
                "input[1].type",
                "`local_shell_call` items",
            ),
            (
                json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}),
                "input[0].type",
                "item_reference",
            ),
            (
                json!({"model": "m", "input": [{"role": "user", "content": [
                    {"type": "input_image", "file_id": "file-1"}]}]}),
                "input[0].content[0].file_id",
                "image_url",
            ),
            (
                json!({"model": "m", "input": [{"role": "user", "content": [
                    {"type": "input_audio", "input_audio": {}}]}]}),
                "input[0].content[0].type",
                "`input_audio`",
            ),
            (
                json!({"model": "m", "input": [{"role": "user", "content": [
                    {"type": "input_file", "file_id": "file-1"}]}]}),
                "input[0].content[0].file_id",
                "file_data",
            ),
            (
                json!({"model": "m", "input": [{"role": "tool", "content": "x"}]}),
                "input[0].role",
                "unsupported role",
            ),
            (
                json!({"model": "m", "input": 3}),
                "input",
                "a string or an array",
            ),
            (json!({"model": "m"}), "input", "required"),
            (
                json!({"model": "m", "input": [{"type": "reasoning", "summary": []}]}),
                "input",
                "no user or assistant content",
            ),
            (
                json!({"model": "m", "input": [{"type": "function_call", "name": "f"}]}),
                "input[0].call_id",
                "required",
            ),
            (
                json!({"model": "m", "input": "x", "tools": [{"type": "file_search"}]}),
                "tools[0].type",
                "`file_search` runs at OpenAI",
            ),
            (
                json!({"model": "m", "input": "x", "max_output_tokens": 0}),
                "max_output_tokens",
                "positive integer",
            ),
            (json!({"input": "x"}), "model", "required"),
        ];
        for (body, param, says) in cases {
            let err = error(body.clone());
            assert_eq!(err.status, 400, "{body}");
            assert_eq!(err.param.as_deref(), Some(param), "{body}: {err}");
            assert!(
                err.message.starts_with(param) && err.message.contains(says),
                "{body}: {err}"
            );
        }
        // Tools OpenAI runs that an agent can do without are dropped, not refused.
        let (request, _, inbound) = parse(json!({"model": "m", "input": "x", "tools": [
            {"type": "web_search", "external_web_access": false}, {"type": "image_generation"},
            {"type": "function", "name": "f"}]}))
        .unwrap();
        assert_eq!(request.tools.len(), 1);
        assert_eq!(inbound.echo["tools"].as_array().map(Vec::len), Some(3));
    }
}
