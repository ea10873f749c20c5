//! A scripted upstream provider on loopback: it records every request it gets (headers and JSON
//! body) and answers each with the next of its replies as an event stream (the last one again and
//! again), on the paths of all three protocols.

use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// What the upstream saw, and the replies it gives in turn.
#[derive(Default)]
pub struct Upstream {
    seen: Mutex<Vec<(HeaderMap, Value)>>,
    replies: Mutex<VecDeque<String>>,
}

impl Upstream {
    /// Listening on 127.0.0.1; its base URL (`http://127.0.0.1:PORT`, no path).
    pub async fn start(replies: &[String]) -> (String, Arc<Upstream>) {
        let up = Arc::new(Upstream {
            replies: Mutex::new(replies.iter().cloned().collect()),
            ..Upstream::default()
        });
        let app = axum::Router::new()
            .route("/v1/messages", axum::routing::post(answer))
            .route("/v1/chat/completions", axum::routing::post(answer))
            .route("/v1/responses", axum::routing::post(answer))
            .with_state(Arc::clone(&up));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), up)
    }

    /// Every request so far, in order: its headers and its body (`null` if not JSON).
    pub fn seen(&self) -> Vec<(HeaderMap, Value)> {
        self.seen.lock().unwrap().clone()
    }
}

async fn answer(
    State(up): State<Arc<Upstream>>,
    headers: HeaderMap,
    body: String,
) -> impl axum::response::IntoResponse {
    up.seen
        .lock()
        .unwrap()
        .push((headers, serde_json::from_str(&body).unwrap_or(Value::Null)));
    let reply = {
        let mut replies = up.replies.lock().unwrap();
        if replies.len() > 1 {
            replies.pop_front().unwrap()
        } else {
            replies.front().cloned().unwrap_or_default()
        }
    };
    ([("content-type", "text/event-stream")], reply)
}
