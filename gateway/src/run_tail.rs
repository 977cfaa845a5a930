//! A run's log tail for a caller in another process: the controller's cron calls functions
//! through the gateway, which forwards to the pod that runs them, so the lines the guest
//! printed during the run are only in that pod. When a call carries a run id
//! ([`faas_api::contract::RUN_ID_HEADER`], believed only from the platform: see
//! [`crate::inbound`]) and nothing here asked for its tail, the executor is given a sink, the
//! answer is read to its end (the tail is complete only once the guest is done), and the tail
//! goes back in [`faas_api::contract::LOG_TAIL_HEADER`]. The gateway passes response headers
//! through, and the controller puts the tail on the run record.
//!
//! An answer larger than [`MAX_BUFFERED`] is passed on as it streams, without a tail: a run
//! record keeps an excerpt of the output anyway, and memory stays bounded.

use faas_runtime::{LogTailSink, ResponseBody};
use http::{HeaderMap, HeaderValue, Response};

/// The most of an answer held to attach its tail.
pub const MAX_BUFFERED: usize = 1 << 20;
/// How long the tail is waited for once the answer ended (the guest's task ends a moment
/// after its last byte).
const TAIL_WAIT: std::time::Duration = std::time::Duration::from_millis(300);

/// A sink for the tail of this call when the caller is a run of another process's.
pub fn wanted(headers: &HeaderMap) -> Option<LogTailSink> {
    headers
        .contains_key(faas_api::contract::RUN_ID_HEADER)
        .then(LogTailSink::default)
}

/// `response` with the tail `sink` receives in its headers (see the module docs).
pub async fn attach(response: Response<ResponseBody>, sink: LogTailSink) -> Response<ResponseBody> {
    let (mut parts, body) = response.into_parts();
    let read = match faas_invoke::buffer_whole(body, MAX_BUFFERED).await {
        faas_invoke::Buffered::Whole(read) => read,
        faas_invoke::Buffered::Streaming(body) => return Response::from_parts(parts, body),
    };
    if let Some(tail) = sink.wait(TAIL_WAIT).await
        && let Ok(value) = HeaderValue::from_str(&faas_api::contract::encode_log_tail(&tail))
    {
        parts
            .headers
            .insert(faas_api::contract::LOG_TAIL_HEADER, value);
    }
    Response::from_parts(parts, faas_invoke::full_body(read))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::Bytes;
    use faas_runtime::BoxError;
    use http_body::Frame;
    use http_body_util::{BodyExt as _, StreamBody};

    fn response(chunks: Vec<Result<Bytes, &'static str>>) -> Response<ResponseBody> {
        let stream = futures::stream::iter(
            chunks
                .into_iter()
                .map(|c| c.map(Frame::data).map_err(BoxError::from)),
        );
        Response::new(StreamBody::new(stream).boxed_unsync())
    }

    async fn text(response: Response<ResponseBody>) -> Result<Bytes, String> {
        response
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn only_a_run_asks_for_a_tail() {
        let mut headers = HeaderMap::new();
        assert!(wanted(&headers).is_none());
        headers.insert(
            faas_api::contract::RUN_ID_HEADER,
            HeaderValue::from_static("f.daily.20261206t030000z"),
        );
        assert!(wanted(&headers).is_some());
    }

    #[tokio::test]
    async fn the_tail_comes_back_in_a_header_with_the_whole_answer() {
        let sink = LogTailSink::default();
        sink.set("one\ntwo\n".to_owned());
        let answered = attach(
            response(vec![Ok(Bytes::from("he")), Ok(Bytes::from("llo"))]),
            sink,
        )
        .await;
        let value = answered.headers()[faas_api::contract::LOG_TAIL_HEADER]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            faas_api::contract::decode_log_tail(&value).as_deref(),
            Some("one\ntwo\n")
        );
        assert_eq!(text(answered).await.unwrap(), "hello");
    }

    #[tokio::test]
    async fn a_large_answer_streams_on_without_a_tail_and_an_error_stays_an_error() {
        let sink = LogTailSink::default();
        sink.set("never sent".to_owned());
        let big = Bytes::from(vec![b'x'; MAX_BUFFERED]);
        let answered = attach(
            response(vec![
                Ok(big.clone()),
                Ok(Bytes::from("yz")),
                Ok(Bytes::from("!")),
            ]),
            sink,
        )
        .await;
        assert!(
            !answered
                .headers()
                .contains_key(faas_api::contract::LOG_TAIL_HEADER)
        );
        let body = text(answered).await.unwrap();
        assert_eq!(body.len(), MAX_BUFFERED + 3);
        assert!(body.ends_with(b"yz!"));

        let broken = attach(
            response(vec![Ok(Bytes::from("part")), Err("pod went away")]),
            LogTailSink::default(),
        )
        .await;
        assert!(
            !broken
                .headers()
                .contains_key(faas_api::contract::LOG_TAIL_HEADER)
        );
        assert_eq!(text(broken).await.unwrap_err(), "pod went away");
    }
}
