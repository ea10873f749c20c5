//! Error responses with a body, even those hyper writes itself.
//!
//! hyper answers a request it cannot parse (a bad request line, a URI or headers too large) with a
//! bare status and no body, and offers no hook to change that; clients then show an empty error.
//! [`EmptyErrors`] wraps a connection's socket and replaces any error response without a body
//! (status 4xx or 5xx, `content-length: 0`) with the same status and a JSON error that both the
//! Anthropic and the OpenAI clients read (`error.type`, `error.message`). Every other byte passes
//! through untouched: the gateway's own responses always carry a body.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A socket whose bodiless error responses get a JSON body.
pub struct EmptyErrors<IO> {
    io: IO,
    /// A replacement response still being written, and how much of it is out.
    pending: Option<(Vec<u8>, usize)>,
}

impl<IO> EmptyErrors<IO> {
    pub fn new(io: IO) -> Self {
        EmptyErrors { io, pending: None }
    }
}

/// The JSON error for a bodiless response `head`, or `None` when `head` is something else.
pub fn with_body(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let head = text.strip_suffix("\r\n\r\n")?;
    if head.contains("\r\n\r\n") {
        return None;
    }
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let rest = status_line.strip_prefix("HTTP/1.")?;
    let code: u16 = rest.get(2..5)?.parse().ok()?;
    if code < 400 {
        return None;
    }
    let headers: Vec<&str> = lines.collect();
    let empty = headers
        .iter()
        .any(|h| h.eq_ignore_ascii_case("content-length: 0"));
    if !empty {
        return None;
    }
    let (kind, message) = match code {
        400 => (
            "invalid_request_error",
            "the request is not valid HTTP/1.1 (request line, headers or body framing)",
        ),
        405 => ("invalid_request_error", "this method is not allowed here"),
        408 => ("timeout_error", "the request did not arrive in time"),
        413 => ("request_too_large", "the request is too large"),
        414 => ("invalid_request_error", "the request URI is too long"),
        431 => (
            "request_too_large",
            "the request headers are too large (the limit is about 400 KiB)",
        ),
        c if c >= 500 => ("api_error", "the gateway could not answer this request"),
        _ => ("invalid_request_error", "the request was refused"),
    };
    let body = serde_json::json!({"type": "error", "error": {"type": kind, "message": message}})
        .to_string();
    let mut out = format!("{status_line}\r\n");
    for header in headers {
        let lower = header.to_ascii_lowercase();
        if !lower.starts_with("content-length:") && !lower.starts_with("content-type:") {
            out.push_str(header);
            out.push_str("\r\n");
        }
    }
    out.push_str(&format!(
        "content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ));
    Some(out.into_bytes())
}

impl<IO: AsyncWrite + Unpin> EmptyErrors<IO> {
    /// Write out what is pending, if anything.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, at)) = &mut self.pending {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &bytes[*at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *at += n;
            if *at == bytes.len() {
                self.pending = None;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for EmptyErrors<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for EmptyErrors<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        // hyper writes a bodiless response's head in one piece.
        if let Some(replacement) = with_body(buf) {
            self.pending = Some((replacement, 0));
            // The replacement goes out now or at the flush that follows.
            let _ = self.drain(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bodiless_errors_get_a_json_body() {
        let head =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(with_body(head).unwrap()).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
        assert!(head.contains("date: x"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["type"], "request_too_large");
        assert!(
            json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("headers")
        );
    }

    #[test]
    fn everything_else_passes() {
        for bytes in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nextra",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
            b"data: {}\n\n",
            b"",
        ] {
            assert!(
                with_body(bytes).is_none(),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}
