//! Body wrappers that pass every frame through untouched and only copy (a bounded prefix
//! of) the data for analysis.
//!
//! - [`RequestTee`] copies the request body into a shared [`Tap`] while the upstream
//!   client reads it.
//! - [`ResponseTee`] copies the response body into its own [`Tap`] while the client reads
//!   it, and when the body ends (or is dropped, e.g. the client went away) hands both
//!   taps to a [`Finish`] callback exactly once.
//!
//! Copying never blocks and never fails the body: past the limit a tap simply marks
//! itself overflowed and stops copying.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

/// What a tap saw of one body.
#[derive(Debug, Default)]
pub struct Tap {
    limit: usize,
    buf: BytesMut,
    /// The body was longer than the limit; `buf` was discarded.
    pub overflowed: bool,
    /// The body reached its end (not cut short by an error or a drop).
    pub complete: bool,
    /// The body failed with an error.
    pub failed: bool,
}

impl Tap {
    /// A tap copying at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Tap {
            limit,
            buf: BytesMut::new(),
            overflowed: false,
            complete: false,
            failed: false,
        }
    }

    fn copy(&mut self, data: &[u8]) {
        if self.overflowed {
            return;
        }
        if self.buf.len() + data.len() > self.limit {
            self.overflowed = true;
            self.buf = BytesMut::new();
            return;
        }
        self.buf.extend_from_slice(data);
    }

    /// The captured bytes when the body was complete and within the limit.
    pub fn take_complete(&mut self) -> Option<Bytes> {
        if self.complete && !self.overflowed && !self.failed {
            Some(std::mem::take(&mut self.buf).freeze())
        } else {
            None
        }
    }
}

/// A request tap shared between the request body and the response finaliser.
pub type SharedTap = Arc<Mutex<Tap>>;

pin_project! {
    /// Request body wrapper: frames pass through, data is copied into a [`SharedTap`].
    pub struct RequestTee<B> {
        #[pin]
        inner: B,
        tap: Option<SharedTap>,
    }
}

impl<B> RequestTee<B> {
    /// Wraps `inner`; with `tap = None` nothing is copied.
    pub fn new(inner: B, tap: Option<SharedTap>) -> Self {
        RequestTee { inner, tap }
    }
}

impl<B> Body for RequestTee<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        if let Some(tap) = this.tap.as_ref() {
            if let Ok(mut tap) = tap.lock() {
                match &polled {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let Some(data) = frame.data_ref() {
                            tap.copy(data);
                        }
                        // Bodies of known length are not polled again after their last
                        // frame: the end is seen here, not as `None`.
                        if this.inner.is_end_stream() {
                            tap.complete = true;
                        }
                    }
                    Poll::Ready(Some(Err(_))) => tap.failed = true,
                    Poll::Ready(None) => tap.complete = true,
                    Poll::Pending => {}
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        let end = self.inner.is_end_stream();
        if end {
            // An empty body is never polled at all.
            if let Some(Ok(mut tap)) = self.tap.as_ref().map(|t| t.lock()) {
                if !tap.failed {
                    tap.complete = true;
                }
            }
        }
        end
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Called once when a response body has ended or was dropped.
pub trait Finish: Send + 'static {
    /// `response` is the response tap; `ended` is false when the body was dropped early.
    fn finish(self: Box<Self>, response: Tap, ended: bool);
}

pin_project! {
    /// Response body wrapper: frames pass through, data is copied into its own [`Tap`],
    /// and `finish` runs exactly once at the end.
    pub struct ResponseTee<B> {
        #[pin]
        inner: B,
        tap: Tap,
        copy: bool,
        empty: bool,
        finish: Option<Box<dyn Finish>>,
    }

    impl<B> PinnedDrop for ResponseTee<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(f) = this.finish.take() {
                // An empty body (HEAD, 204, 304, `content-length: 0`) may be dropped
                // without a poll: it has still ended.
                let ended = *this.empty;
                if ended {
                    this.tap.complete = true;
                }
                f.finish(std::mem::take(this.tap), ended);
            }
        }
    }
}

impl<B: Body> ResponseTee<B> {
    /// Wraps `inner`; copies at most `limit` bytes when `copy` is true.
    pub fn new(inner: B, limit: usize, copy: bool, finish: Box<dyn Finish>) -> Self {
        ResponseTee {
            empty: inner.is_end_stream(),
            inner,
            tap: Tap::new(limit),
            copy,
            finish: Some(finish),
        }
    }
}

impl<B> Body for ResponseTee<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if *this.copy {
                    if let Some(data) = frame.data_ref() {
                        this.tap.copy(data);
                    }
                }
                // A body of known length ends with its last frame; hyper will not poll
                // for the `None`.
                if this.inner.is_end_stream() {
                    this.tap.complete = true;
                    if let Some(f) = this.finish.take() {
                        f.finish(std::mem::take(this.tap), true);
                    }
                }
            }
            Poll::Ready(Some(Err(_))) => {
                this.tap.failed = true;
                if let Some(f) = this.finish.take() {
                    f.finish(std::mem::take(this.tap), false);
                }
            }
            Poll::Ready(None) => {
                this.tap.complete = true;
                if let Some(f) = this.finish.take() {
                    f.finish(std::mem::take(this.tap), true);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    fn chunks(
        parts: &[&'static [u8]],
    ) -> impl Body<Data = Bytes, Error = std::convert::Infallible> {
        let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = parts
            .iter()
            .map(|p| Ok(Frame::data(Bytes::from_static(p))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    /// What the finaliser saw: captured bytes and whether the body ended.
    type Seen = Arc<Mutex<Option<(Option<Bytes>, bool)>>>;

    struct Collect(Seen);
    impl Finish for Collect {
        fn finish(self: Box<Self>, mut response: Tap, ended: bool) {
            *self.0.lock().unwrap() = Some((response.take_complete(), ended));
        }
    }

    #[tokio::test]
    async fn request_tee_passes_bytes_and_copies_within_limit() {
        let tap = Arc::new(Mutex::new(Tap::new(10)));
        let body = RequestTee::new(chunks(&[b"abc", b"def"]), Some(tap.clone()));
        let out = body.collect().await.unwrap().to_bytes();
        assert_eq!(&out[..], b"abcdef");
        assert_eq!(tap.lock().unwrap().take_complete().unwrap(), &b"abcdef"[..]);
    }

    #[tokio::test]
    async fn request_tee_over_limit_still_passes_everything() {
        let tap = Arc::new(Mutex::new(Tap::new(4)));
        let body = RequestTee::new(chunks(&[b"abc", b"def"]), Some(tap.clone()));
        let out = body.collect().await.unwrap().to_bytes();
        assert_eq!(&out[..], b"abcdef");
        let mut t = tap.lock().unwrap();
        assert!(t.overflowed);
        assert!(t.take_complete().is_none());
    }

    #[tokio::test]
    async fn response_tee_finishes_once_at_end() {
        let seen = Arc::new(Mutex::new(None));
        let body = ResponseTee::new(
            chunks(&[b"{\"a\":", b"1}"]),
            100,
            true,
            Box::new(Collect(seen.clone())),
        );
        let out = body.collect().await.unwrap().to_bytes();
        assert_eq!(&out[..], b"{\"a\":1}");
        let got = seen.lock().unwrap().take().unwrap();
        assert_eq!(got.0.unwrap(), &b"{\"a\":1}"[..]);
        assert!(got.1);
    }

    #[tokio::test]
    async fn known_length_bodies_complete_with_their_last_frame() {
        // hyper stops polling a body once `is_end_stream()` is true.
        let tap = Arc::new(Mutex::new(Tap::new(100)));
        let mut req = RequestTee::new(
            http_body_util::Full::new(Bytes::from_static(b"{}")),
            Some(tap.clone()),
        );
        let frame = req.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), &b"{}"[..]);
        assert!(req.is_end_stream());
        assert_eq!(tap.lock().unwrap().take_complete().unwrap(), &b"{}"[..]);

        let seen = Arc::new(Mutex::new(None));
        let mut resp = ResponseTee::new(
            http_body_util::Full::new(Bytes::from_static(b"[1]")),
            100,
            true,
            Box::new(Collect(seen.clone())),
        );
        let _ = resp.frame().await.unwrap().unwrap();
        let got = seen
            .lock()
            .unwrap()
            .take()
            .expect("finished without a final poll");
        assert_eq!(got.0.unwrap(), &b"[1]"[..]);
        drop(resp);
        assert!(seen.lock().unwrap().is_none(), "finish runs once");
    }

    #[tokio::test]
    async fn empty_request_body_counts_as_complete() {
        let tap = Arc::new(Mutex::new(Tap::new(100)));
        let req = RequestTee::new(http_body_util::Empty::<Bytes>::new(), Some(tap.clone()));
        assert!(req.is_end_stream());
        assert_eq!(tap.lock().unwrap().take_complete().unwrap(), &b""[..]);
    }

    #[tokio::test]
    async fn response_tee_finishes_on_drop() {
        let seen = Arc::new(Mutex::new(None));
        let body = ResponseTee::new(chunks(&[b"x"]), 100, true, Box::new(Collect(seen.clone())));
        drop(body);
        let got = seen.lock().unwrap().take().unwrap();
        assert!(got.0.is_none(), "an unfinished body is not analysed");
        assert!(!got.1);
    }
}
