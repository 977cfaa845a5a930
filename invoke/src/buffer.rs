//! An answer read whole when it is small, for a caller that must see its end before it adds
//! to it (a run's log tail, complete only once the function answered): up to a bound it is
//! held; past it, what was read and the rest go on as one body again, as they stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;

use crate::{BoxError, ResponseBody};

/// What [`buffer_whole`] read.
pub enum Buffered {
    /// The whole body, at most the bound.
    Whole(Bytes),
    /// A body over the bound (or one that failed): the same bytes, streaming on.
    Streaming(ResponseBody),
}

/// Reads `body` to its end if it has at most `limit` bytes (trailers are dropped: nothing of
/// the platform sends them); a larger or failing body comes back whole as
/// [`Buffered::Streaming`], nothing lost, its error still at its end.
pub async fn buffer_whole(mut body: ResponseBody, limit: usize) -> Buffered {
    let mut read = BytesMut::new();
    loop {
        match body.frame().await {
            None => return Buffered::Whole(read.freeze()),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    read.extend_from_slice(&data);
                }
                if read.len() > limit {
                    return Buffered::Streaming(Resumed::boxed(read.freeze(), Some(body), None));
                }
            }
            Some(Err(e)) => {
                return Buffered::Streaming(Resumed::boxed(read.freeze(), None, Some(e)));
            }
        }
    }
}

/// `head`, then `rest`: a body some of which was read ahead (a prelude parsed off its
/// front), whole again.
pub fn prepend(head: Bytes, rest: ResponseBody) -> ResponseBody {
    Resumed::boxed(head, Some(rest), None)
}

/// Bytes already read, then the rest of a body or the error it ended with.
struct Resumed {
    head: Option<Bytes>,
    rest: Option<ResponseBody>,
    error: Option<BoxError>,
}

impl Resumed {
    fn boxed(head: Bytes, rest: Option<ResponseBody>, error: Option<BoxError>) -> ResponseBody {
        Resumed {
            head: Some(head).filter(|h| !h.is_empty()),
            rest,
            error,
        }
        .boxed_unsync()
    }
}

impl Body for Resumed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(head) = self.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        if let Some(rest) = self.rest.as_mut() {
            match Pin::new(rest).poll_frame(cx) {
                Poll::Ready(None) => self.rest = None,
                other => return other,
            }
        }
        Poll::Ready(self.error.take().map(Err))
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_none()
            && self.error.is_none()
            && self.rest.as_ref().is_none_or(|r| r.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let head = self.head.as_ref().map_or(0, |h| h.len() as u64);
        let mut hint = self
            .rest
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |r| r.size_hint());
        hint.set_lower(hint.lower() + head);
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper + head);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http_body_util::StreamBody;

    fn body(chunks: Vec<Result<&'static str, &'static str>>) -> ResponseBody {
        let frames = chunks.into_iter().map(|c| {
            c.map(|s| Frame::data(Bytes::from(s)))
                .map_err(BoxError::from)
        });
        StreamBody::new(futures::stream::iter(frames)).boxed_unsync()
    }

    async fn read(body: ResponseBody) -> (Bytes, Option<String>) {
        let mut read = BytesMut::new();
        let mut body = body;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => read.extend_from_slice(&frame.into_data().unwrap()),
                Err(e) => return (read.freeze(), Some(e.to_string())),
            }
        }
        (read.freeze(), None)
    }

    #[tokio::test]
    async fn a_body_within_the_bound_is_read_whole() {
        let Buffered::Whole(bytes) = buffer_whole(body(vec![Ok("he"), Ok("llo")]), 5).await else {
            panic!("not whole");
        };
        assert_eq!(bytes, "hello");
    }

    #[tokio::test]
    async fn a_larger_body_streams_on_whole_and_an_error_stays_at_its_end() {
        let Buffered::Streaming(rest) =
            buffer_whole(body(vec![Ok("he"), Ok("llo"), Ok("!"), Ok("?")]), 4).await
        else {
            panic!("over the bound");
        };
        assert_eq!(read(rest).await, (Bytes::from("hello!?"), None));
        let Buffered::Streaming(failed) =
            buffer_whole(body(vec![Ok("he"), Err("reset")]), 100).await
        else {
            panic!("failed");
        };
        assert_eq!(
            read(failed).await,
            (Bytes::from("he"), Some("reset".to_owned()))
        );
    }
}
