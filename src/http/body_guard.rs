//! What every request body goes through before any handler, extractor or authentication:
//!
//! - A `Content-Encoding` other than `identity` answers 415 before the body is read: rcsync
//!   accepts no compressed bodies, because a few KB of zstd or gzip inflate to gigabytes
//!   before any size limit can look at them.
//! - The body must arrive within [`BodyTimeout`] of the request head; a client trickling it
//!   gets 408 and its connection is closed, instead of holding a request open indefinitely.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{HeaderMap, CONTENT_ENCODING};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{HttpMessage, ResponseError};
use futures::Stream;

use super::error::ApiError;

/// actix-http's `BoxedPayloadStream`, which actix-web does not re-export.
type BoxedPayloadStream = Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>;

/// How long a client has to send a request body once its head has arrived (app data).
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub Duration);

pub async fn guard_body<B: MessageBody>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    if let Some(coding) = unsupported_encoding(req.headers()) {
        let refusal = ApiError::UnsupportedMediaType(format!(
            "Content-Encoding `{coding}` is not accepted; send the body uncompressed"
        ));
        return Ok(req
            .into_response(refusal.error_response())
            .map_into_right_body());
    }
    if let Some(BodyTimeout(timeout)) = req.app_data::<BodyTimeout>().copied() {
        let payload = req.take_payload();
        if !matches!(payload, Payload::None) {
            let stream: BoxedPayloadStream = Box::pin(DeadlinePayload::new(payload, timeout));
            req.set_payload(Payload::from(stream));
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// The first coding other than `identity`, over every `Content-Encoding` header.
fn unsupported_encoding(headers: &HeaderMap) -> Option<String> {
    headers.get_all(CONTENT_ENCODING).find_map(|value| {
        let Ok(text) = value.to_str() else {
            return Some(String::from_utf8_lossy(value.as_bytes()).into_owned());
        };
        text.split(',')
            .map(str::trim)
            .find(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case("identity"))
            .map(|coding| coding.chars().take(40).collect())
    })
}

/// A request body that fails with `TimedOut` once its deadline passes.
struct DeadlinePayload {
    inner: Payload,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    finished: bool,
}

impl DeadlinePayload {
    fn new(inner: Payload, timeout: Duration) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
            finished: false,
        }
    }
}

impl Stream for DeadlinePayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(None) => {
                this.finished = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(chunk)) => Poll::Ready(Some(chunk)),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.finished = true;
                    let message = format!(
                        "Request body not received within {} s",
                        this.timeout.as_secs()
                    );
                    let error = io::Error::new(io::ErrorKind::TimedOut, message);
                    Poll::Ready(Some(Err(PayloadError::Io(error))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn with_encoding(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(CONTENT_ENCODING, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn only_identity_is_accepted() {
        for accepted in [&[][..], &["identity"], &["Identity, identity"], &[""]] {
            assert_eq!(
                unsupported_encoding(&with_encoding(accepted)),
                None,
                "{accepted:?}"
            );
        }
        let refused: [(&[&str], &str); 5] = [
            (&["gzip"], "gzip"),
            (&["zstd"], "zstd"),
            (&["br"], "br"),
            (&["identity, deflate"], "deflate"),
            (&["identity", "gzip"], "gzip"),
        ];
        for (values, coding) in refused {
            assert_eq!(
                unsupported_encoding(&with_encoding(values)).as_deref(),
                Some(coding)
            );
        }
    }
}
