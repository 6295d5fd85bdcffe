//! JSON bodies for the errors hyper answers by itself, before a request reaches the router.
//!
//! When a request line or its headers are too long (414, 431) or are not HTTP at all (400),
//! hyper writes a bare status line with an empty body and closes the connection. Every other
//! error Cairn sends is MLflow's `{"error_code", "message"}` object, and clients that parse it
//! choke on the empty body. hyper offers no hook for these answers, so the connection's socket
//! is wrapped: a write that is exactly such an answer (an HTTP/1 status line of 400, 414 or 431
//! with `content-length: 0`, which no route produces: routes always send a JSON body) is
//! replaced by the same status with a JSON body. Everything else passes through untouched,
//! vectored writes included.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A socket whose early hyper errors get JSON bodies.
#[derive(Debug)]
pub struct JsonEarlyErrors<IO> {
    inner: IO,
    /// A replacement being written, and how much of it is out; with the length of hyper's
    /// original write, reported once the replacement is fully sent.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<IO> JsonEarlyErrors<IO> {
    /// Wraps `inner`.
    pub fn new(inner: IO) -> Self {
        JsonEarlyErrors { inner, pending: None }
    }
}

/// The JSON answer to put in place of hyper's bare one, if `head` is one.
fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    if !text.starts_with("HTTP/1.") || !text.ends_with("\r\n\r\n") {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    if !lower.contains("\r\ncontent-length: 0\r\n") {
        return None;
    }
    let status = text.get(9..12)?;
    let (reason, code, message) = match status {
        "400" => ("Bad Request", "BAD_REQUEST", "The request is not valid HTTP/1.1"),
        "414" => (
            "URI Too Long",
            "INVALID_PARAMETER_VALUE",
            "The request URI is longer than the server accepts (64 KiB); send long parameters in a POST body",
        ),
        "431" => (
            "Request Header Fields Too Large",
            "INVALID_PARAMETER_VALUE",
            "The request's headers are larger than the server accepts (at most 100 headers, 400 KiB in all)",
        ),
        _ => return None,
    };
    let body = serde_json::json!({ "error_code": code, "message": message }).to_string();
    let date = text
        .split("\r\n")
        .find(|line| line.get(..5).is_some_and(|name| name.eq_ignore_ascii_case("date:")))
        .map(|line| format!("{line}\r\n"))
        .unwrap_or_default();
    Some(
        format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{date}\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl<IO: AsyncRead + Unpin> AsyncRead for JsonEarlyErrors<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> JsonEarlyErrors<IO> {
    /// Writes out a pending replacement; ready with the original write's length when done.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        while let Some((bytes, written, original)) = &mut self.pending {
            if *written == bytes.len() {
                let original = *original;
                self.pending = None;
                return Poll::Ready(Ok(original));
            }
            let n = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(0))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for JsonEarlyErrors<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.pending.is_none()
            && let Some(bytes) = replacement(buf)
        {
            self.pending = Some((bytes, 0, buf.len()));
        }
        if self.pending.is_some() {
            return self.poll_pending(cx);
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.pending.is_none() {
            let non_empty: Vec<&IoSlice<'_>> = bufs.iter().filter(|b| !b.is_empty()).collect();
            if let [only] = non_empty.as_slice()
                && let Some(bytes) = replacement(only)
            {
                self.pending = Some((bytes, 0, only.len()));
            }
        }
        if self.pending.is_some() {
            return self.poll_pending(cx);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.pending.is_some() {
            std::task::ready!(self.poll_pending(cx))?;
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.pending.is_some() {
            std::task::ready!(self.poll_pending(cx))?;
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[test]
    fn only_bare_hyper_errors_are_replaced() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 08:08:35 GMT\r\n\r\n";
        let text = String::from_utf8(replacement(bare).unwrap()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{head}");
        assert!(head.contains("\r\ncontent-type: application/json") && head.contains("\r\ndate: Wed, 02 Dec 2026"));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error_code"], "INVALID_PARAMETER_VALUE");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let uri = b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        assert!(String::from_utf8(replacement(uri).unwrap()).unwrap().contains("\"message\":\"The request URI"));
        // A route's own answers always have bodies, and other statuses are left alone.
        assert!(replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 120\r\n\r\n").is_none());
        assert!(replacement(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{").is_none());
        assert!(replacement(b"{\"a\": 1}").is_none());
    }

    #[tokio::test]
    async fn the_replacement_is_written_whole_and_the_rest_passes_through() {
        let (client, server) = tokio::io::duplex(16);
        let mut wrapped = JsonEarlyErrors::new(server);
        let bare = b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        let reader = tokio::spawn(async move {
            let mut client = client;
            let mut all = Vec::new();
            client.read_to_end(&mut all).await.unwrap();
            all
        });
        let n = wrapped.write(bare).await.unwrap();
        assert_eq!(n, bare.len(), "hyper is told its own write went out");
        wrapped.write_all(b"after").await.unwrap();
        wrapped.shutdown().await.unwrap();
        drop(wrapped);
        let all = String::from_utf8(reader.await.unwrap()).unwrap();
        assert!(all.starts_with("HTTP/1.1 414 URI Too Long\r\ncontent-type: application/json"), "{all}");
        assert!(all.ends_with("}after"), "{all}");
    }
}
