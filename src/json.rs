//! JSON bodies in memory proportional to their size.
//!
//! A `serde_json::Value` costs ten or more times the bytes it was parsed from (every object is a
//! B-tree, every value 32 bytes plus its heap): a 12 MB conversation held as one tree took over a
//! gigabyte. So a request body is read one level deep — [`Fields`] keeps each top-level field as the
//! raw text it is, borrowed from the body — and a long array in it (the messages) is walked one
//! item at a time with [`items`], each item parsed, used and dropped. The other way, [`object_with_array`]
//! writes a body whose long array is serialized one item at a time.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Why a body is not a JSON object.
#[derive(Debug)]
pub enum NotAnObject {
    /// Not JSON at all.
    Invalid(serde_json::Error),
    /// JSON, but of another kind (`"an array"`, `"a string"`, …).
    Kind(&'static str),
}

/// A JSON object's top-level fields, in the order sent, each still the raw JSON text it was sent
/// as. A key sent twice counts as its last value (as serde_json reads it).
pub struct Fields<'a> {
    fields: Vec<(String, &'a RawValue)>,
}

/// The fields of an object, in order, their values borrowed raw.
struct InOrder<'a>(Vec<(String, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for InOrder<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = InOrder<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Self::Value, M::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    fields.push(entry);
                }
                Ok(InOrder(fields))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

impl<'a> Fields<'a> {
    /// Read `body` one level deep. The whole body is checked to be valid JSON.
    pub fn parse(body: &'a [u8]) -> Result<Fields<'a>, NotAnObject> {
        let raw: &RawValue = serde_json::from_slice(body).map_err(NotAnObject::Invalid)?;
        match kind(raw) {
            "an object" => {}
            other => return Err(NotAnObject::Kind(other)),
        }
        let InOrder(fields) = serde_json::from_str(raw.get()).map_err(NotAnObject::Invalid)?;
        Ok(Fields { fields })
    }

    /// A field's raw text; a JSON `null` counts as absent.
    pub fn raw(&self, key: &str) -> Option<&'a RawValue> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .filter(|v| v.get() != "null")
    }

    /// A field as a value (for the small ones).
    pub fn value(&self, key: &str) -> Option<Value> {
        self.raw(key).and_then(|raw| parse(raw).ok())
    }

    /// The fields named in `keys` (those present) as values: what a reader uses, and nothing of
    /// the rest (an object of a million unknown keys is not a million values).
    pub fn values_of(&self, keys: &[&str]) -> Map<String, Value> {
        keys.iter()
            .filter_map(|key| Some((key.to_string(), self.value(key)?)))
            .collect()
    }
}

/// The items of a JSON array, each still raw; `Err` names the kind of what it is instead.
pub fn items(raw: &RawValue) -> Result<Vec<&RawValue>, &'static str> {
    match kind(raw) {
        "an array" => serde_json::from_str(raw.get()).map_err(|_| "an invalid array"),
        other => Err(other),
    }
}

/// Parse one raw value (already checked to be valid JSON, so this fails only on nesting deeper
/// than serde_json's recursion limit).
pub fn parse(raw: &RawValue) -> Result<Value, serde_json::Error> {
    serde_json::from_str(raw.get())
}

/// What kind of JSON a raw value is, in words, read from its first byte (no parsing).
pub fn kind(raw: &RawValue) -> &'static str {
    match raw.get().trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// The object `fields` came from, with `key` set to `value` (added last if it was not there); every
/// other field as it was sent, byte for byte.
pub fn with_field(fields: &Fields<'_>, key: &str, value: &Value) -> String {
    with_fields(fields, &[(key, value.to_string())])
}

/// The object `fields` came from, with each `(key, JSON text)` of `set` set (last, in the order
/// given); every other field as it was sent, byte for byte, a repeated key written once.
pub fn with_fields(fields: &Fields<'_>, set: &[(&str, String)]) -> String {
    let mut out = String::from("{");
    let mut first = true;
    let mut push = |out: &mut String, k: &str, v: &str| {
        if !std::mem::take(&mut first) {
            out.push(',');
        }
        out.push_str(&Value::from(k).to_string());
        out.push(':');
        out.push_str(v);
    };
    let last: std::collections::HashMap<&str, usize> = fields
        .fields
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (k.as_str(), i))
        .collect();
    for (i, (k, raw)) in fields.fields.iter().enumerate() {
        let replaced = set.iter().any(|(key, _)| key == k);
        if !replaced && last.get(k.as_str()) == Some(&i) {
            push(&mut out, k, raw.get());
        }
    }
    for (key, value) in set {
        push(&mut out, key, value);
    }
    out.push('}');
    out
}

/// `head` (an object) with one more field, `key`, an array of `items` serialized one at a time: a
/// long conversation costs its bytes, not a tree of them.
pub fn object_with_array(
    head: &Value,
    key: &str,
    items: impl IntoIterator<Item = Value>,
) -> String {
    let mut out = head.to_string();
    // `head` is an object: `{}` or `{…}`. Reopen it and append the array as its last field.
    out.pop();
    if out.len() > 1 {
        out.push(',');
    }
    out.push_str(&Value::from(key).to_string());
    out.push_str(":[");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&item.to_string());
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_are_read_one_level_deep_and_null_is_absent() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"},2],"stream":null}"#;
        let Ok(fields) = Fields::parse(body) else {
            panic!("an object")
        };
        assert_eq!(fields.value("model"), Some(json!("m")));
        assert!(fields.raw("stream").is_none());
        let messages = fields.raw("messages").map(items);
        let Some(Ok(messages)) = messages else {
            panic!("an array: {messages:?}")
        };
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1].get(), "2");
        let head = fields.values_of(&["model", "stream", "absent"]);
        assert_eq!(
            head.keys().collect::<Vec<_>>(),
            ["model"],
            "null counts as absent"
        );
        // A repeated key counts as its last value, everywhere.
        let Ok(twice) = Fields::parse(br#"{"a":1,"b":2,"a":3}"#) else {
            panic!("an object")
        };
        assert_eq!(twice.value("a"), Some(json!(3)));
        assert_eq!(twice.values_of(&["a"])["a"], json!(3));
        assert_eq!(
            with_field(&twice, "c", &json!("x")),
            r#"{"b":2,"a":3,"c":"x"}"#
        );
    }

    #[test]
    fn a_field_is_set_and_the_others_kept_byte_for_byte() {
        let body = br#"{"model":"a","messages":[ {"x" : 1.50} ],"z":null}"#;
        let Ok(fields) = Fields::parse(body) else {
            panic!("an object")
        };
        let text = with_field(&fields, "model", &json!("b\"c"));
        assert_eq!(
            text,
            r#"{"messages":[ {"x" : 1.50} ],"z":null,"model":"b\"c"}"#
        );
        let back: Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(back["model"], "b\"c");
        assert!(back["z"].is_null() && back.as_object().is_some_and(|o| o.len() == 3));
        let added = with_field(&fields, "stream", &json!("x"));
        let back: Value = serde_json::from_str(&added).unwrap_or_default();
        assert_eq!(
            (back["stream"].as_str(), back["model"].as_str()),
            (Some("x"), Some("a"))
        );
    }

    #[test]
    fn what_is_not_an_object_says_what_it_is() {
        assert!(matches!(
            Fields::parse(b" [1]"),
            Err(NotAnObject::Kind("an array"))
        ));
        assert!(matches!(
            Fields::parse(b"{\"a\":"),
            Err(NotAnObject::Invalid(_))
        ));
        let Ok(raw) = serde_json::from_str::<&RawValue>("\"x\"") else {
            panic!("a string")
        };
        assert!(matches!(items(raw), Err("a string")));
    }

    #[test]
    fn an_object_with_an_array_is_the_same_json_as_a_whole_tree() {
        let items = vec![json!({"role": "user", "content": "a\"b"}), json!(3)];
        let head = json!({"model": "m", "stream": true});
        let text = object_with_array(&head, "messages", items.clone());
        let back: Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(
            back,
            json!({"model": "m", "stream": true, "messages": items})
        );
        let empty = object_with_array(&json!({}), "messages", Vec::new());
        assert_eq!(empty, r#"{"messages":[]}"#);
    }
}
