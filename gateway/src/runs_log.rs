//! `GET /system/runs/{id}/log?offset=N`: a piece of a run's whole log (the scheduler's store
//! keeps it, `faas_schedule::run_log`), for `faas runs logs [-f]` and the dashboard's run page.
//!
//! The answer is JSON: `text` (the log from `offset`, at most 1 MiB, cut before a character
//! split by the piece's end), `next` (where the next piece starts), `size`, the run's `phase`
//! and `done` (the run has ended and `next` is the end of its log: following stops).

use std::sync::Arc;

use faas_runtime::ResponseBody;
use faas_schedule::plan::is_final;
use faas_schedule::run_log::MAX_READ_BYTES;
use faas_schedule::store::phase;
use http::{Response, StatusCode};

use crate::platform::Platform;
use crate::reply::{json_error, json_response};
use crate::runs_api::Query;

pub(crate) async fn serve(
    platform: &Arc<Platform>,
    id: &str,
    query: &Query,
) -> Response<ResponseBody> {
    let Some(scheduler) = platform.scheduler.get() else {
        return json_error(
            StatusCode::NOT_FOUND,
            "NoScheduler",
            "this gateway runs no scheduler",
        );
    };
    let offset = match query.get("offset").map(str::parse::<u64>) {
        None => 0,
        Some(Ok(offset)) => offset,
        Some(Err(_)) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "BadQuery",
                "offset: expected a number of bytes",
            );
        }
    };
    let store = scheduler.runner().store();
    let run = match store.get(id.to_owned()).await {
        Ok(Some(run)) => run,
        Ok(None) => {
            return json_error(
                StatusCode::NOT_FOUND,
                "RunNotFound",
                &format!(
                    "run {id} not found (history keeps only the newest runs of each schedule)"
                ),
            );
        }
        Err(err) => {
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "RunStoreFailed",
                &err.to_string(),
            );
        }
    };
    let chunk = match store.read_log(id.to_owned(), offset, MAX_READ_BYTES).await {
        Ok(chunk) => chunk.unwrap_or_default(),
        Err(err) => {
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "RunLogFailed",
                &err.to_string(),
            );
        }
    };
    let start = chunk.next - chunk.bytes.len() as u64;
    let at_end = chunk.next >= chunk.size;
    let (text, used) = text_of(&chunk.bytes, at_end);
    let next = start + used as u64;
    let phase = phase(&run);
    let body = serde_json::json!({
        "run": id,
        "text": text,
        "next": next,
        "size": chunk.size,
        "phase": phase.as_str(),
        "done": is_final(phase) && next >= chunk.size,
    });
    json_response(StatusCode::OK, &body)
}

/// The piece as text, and how many of its bytes that text covers: a character the piece's
/// end splits is left for the next piece, unless the log ends there.
fn text_of(bytes: &[u8], at_end: bool) -> (String, usize) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), bytes.len()),
        Err(e) if e.error_len().is_none() && !at_end => {
            let valid = e.valid_up_to();
            (String::from_utf8_lossy(&bytes[..valid]).into_owned(), valid)
        }
        Err(_) => (String::from_utf8_lossy(bytes).into_owned(), bytes.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::text_of;

    #[test]
    fn a_character_split_by_the_end_of_a_piece_waits_for_the_next() {
        let text = "é".as_bytes();
        assert_eq!(text_of(&[b'a', text[0]], false), ("a".to_owned(), 1));
        assert_eq!(text_of(&[b'a', text[0]], true), ("a\u{fffd}".to_owned(), 2));
        assert_eq!(text_of(b"a\xffb", false), ("a\u{fffd}b".to_owned(), 3));
        assert_eq!(text_of("aé".as_bytes(), false), ("aé".to_owned(), 3));
    }
}
