//! A response to a request whose body was never read to the end says `Connection: close`.
//!
//! Many answers come before the body is read: a refused sign-in or permission (401, 403, 429),
//! an unknown route, a cross-origin refusal, a malformed path. hyper cannot find where the next
//! request on the connection starts without the rest of the body, so it closes the connection
//! after such a response, but it does not say so. A client that sent the body in a second
//! packet (as `requests` does) then reuses the connection for its next call, which fails with
//! "Remote end closed connection without response", and the MLflow client does not retry a
//! write. Saying `Connection: close` makes clients open a new connection instead. HTTP/2 has
//! no such header, and no such problem: each request is its own stream.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, Version, header};
use axum::response::Response;
use hyper::body::{Frame, SizeHint};

/// Whether a request's body has been read to its end.
#[derive(Debug, Clone)]
pub struct BodyRead {
    /// `None` when the request declares no body, so there is nothing to watch.
    finished: Option<Arc<AtomicBool>>,
}

/// Wraps `request`'s body so that reading it to the end is noticed.
pub fn watch(request: Request) -> (Request, BodyRead) {
    if !declares_body(&request) {
        return (request, BodyRead { finished: None });
    }
    let finished = Arc::new(AtomicBool::new(false));
    let request = request.map(|inner| Body::new(WatchedBody { inner, finished: finished.clone() }));
    (request, BodyRead { finished: Some(finished) })
}

impl BodyRead {
    /// Marks `response` as the connection's last when the body was left unread.
    pub fn mark(&self, response: &mut Response) {
        if self.finished.as_ref().is_some_and(|f| !f.load(Ordering::Acquire)) {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
}

/// An HTTP/1 request with a non-empty body (chunked, or a non-zero length).
fn declares_body(request: &Request) -> bool {
    let http1 = matches!(request.version(), Version::HTTP_10 | Version::HTTP_11);
    let headers = request.headers();
    let length =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    http1 && (headers.contains_key(header::TRANSFER_ENCODING) || length.is_some_and(|n| n > 0))
}

struct WatchedBody {
    inner: Body,
    finished: Arc<AtomicBool>,
}

impl WatchedBody {
    fn note_end(&self) {
        self.finished.store(true, Ordering::Release);
    }
}

impl HttpBody for WatchedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        // A reader may stop at the last frame once `is_end_stream` says so, without asking
        // for the end.
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.note_end();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        let end = self.inner.is_end_stream();
        if end {
            self.note_end();
        }
        end
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Method;
    use http_body_util::BodyExt;

    use super::*;

    fn post(body: &'static str) -> Request {
        Request::builder()
            .method(Method::POST)
            .uri("/x")
            .header(header::CONTENT_LENGTH, body.len().to_string())
            .body(Body::from(body))
            .unwrap()
    }

    fn closes(read: &BodyRead) -> bool {
        let mut response = Response::new(Body::empty());
        read.mark(&mut response);
        response.headers().get(header::CONNECTION).is_some_and(|v| v == "close")
    }

    #[tokio::test]
    async fn an_unread_body_closes_the_connection_and_a_read_one_does_not() {
        let (request, read) = watch(post(r#"{"name":"x"}"#));
        drop(request);
        assert!(closes(&read), "refused before reading");

        let (request, read) = watch(post(r#"{"name":"x"}"#));
        let bytes = request.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], br#"{"name":"x"}"#);
        assert!(!closes(&read), "read to the end");

        let get = Request::builder().uri("/x").body(Body::empty()).unwrap();
        let (_request, read) = watch(get);
        assert!(!closes(&read), "no body to read");
    }
}
