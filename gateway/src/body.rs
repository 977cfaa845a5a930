//! Request bodies in memory: one process-wide budget of bytes (`--body-budget`) and the one
//! reader that charges it.
//!
//! Functions get their request body whole (`http::Request<Bytes>`), so every body being read
//! or served is in memory. Per-function limits (`spec.http.maxBodySize`, the concurrency
//! slot a request takes before its body is read) bound one function; the budget bounds the
//! process, whatever the number of functions and clients: a body is charged as it arrives
//! (its whole `Content-Length` at once when declared, chunk by chunk otherwise) and a body
//! the budget cannot hold is refused with 503 `BodyBudgetExhausted` and `Retry-After`,
//! never queued. The charge is held until the call is over (the response sent), since the
//! function holds the bytes that long.
//!
//! Bodies of at most [`UNCHARGED_BYTES`] are not charged: they cost about what hyper's own
//! per-connection buffer costs, and small requests must keep being served while a flood of
//! uploads holds the budget.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::Body;
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The default `--body-budget`: 512 MiB.
pub const DEFAULT_BODY_BUDGET: u64 = 512 << 20;

/// Bodies up to this size are not charged to the budget.
pub const UNCHARGED_BYTES: u64 = 16 << 10;

/// The budget is counted in KiB, so a semaphore permit count never overflows and one
/// acquisition covers any body.
const UNIT: u64 = 1024;

/// The process-wide budget of request bytes in memory.
#[derive(Debug)]
pub struct BodyBudget {
    units: Arc<Semaphore>,
    total: u64,
}

impl BodyBudget {
    /// A budget of `bytes` (rounded down to whole KiB).
    pub fn new(bytes: u64) -> Self {
        let units = usize::try_from(bytes / UNIT)
            .unwrap_or(Semaphore::MAX_PERMITS)
            .min(Semaphore::MAX_PERMITS);
        Self {
            units: Arc::new(Semaphore::new(units)),
            total: bytes,
        }
    }

    /// The budget, in bytes.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes charged now.
    pub fn in_use(&self) -> u64 {
        let free = self.units.available_permits() as u64 * UNIT;
        (self.total / UNIT * UNIT).saturating_sub(free)
    }

    /// Grows `charge` so that it covers `bytes` in all; false (and `charge` unchanged) when
    /// the budget cannot. Never waits: a full budget is an answer, not a queue.
    fn cover(&self, charge: &mut Charge, bytes: u64) -> bool {
        if bytes <= UNCHARGED_BYTES {
            return true;
        }
        let wanted = bytes.div_ceil(UNIT);
        let held = charge.units();
        if wanted <= held {
            return true;
        }
        let Ok(more) = u32::try_from(wanted - held) else {
            return false;
        };
        match Arc::clone(&self.units).try_acquire_many_owned(more) {
            Ok(permit) => {
                match &mut charge.0 {
                    Some(existing) => existing.merge(permit),
                    None => charge.0 = Some(permit),
                }
                true
            }
            Err(_) => false,
        }
    }
}

/// The part of the budget one body holds; given back on drop.
#[derive(Debug, Default)]
pub struct Charge(Option<OwnedSemaphorePermit>);

impl Charge {
    fn units(&self) -> u64 {
        self.0.as_ref().map_or(0, |p| p.num_permits() as u64)
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.units() * UNIT
    }
}

/// Why a body was not read.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Larger than the limit (declared or while reading).
    TooLarge,
    /// The process-wide budget cannot hold it now.
    BudgetFull,
    /// It did not arrive in time.
    Timeout,
    /// The connection failed while reading.
    Broken(String),
}

/// Reads `body` whole, at most `limit` bytes, within `timeout`, charging `budget` as the
/// bytes arrive. A declared `Content-Length` over the limit or the budget is refused before
/// anything is read.
pub async fn read<B>(
    budget: &BodyBudget,
    declared: Option<u64>,
    body: B,
    limit: u64,
    timeout: Duration,
) -> Result<(Bytes, Charge), Refused>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut charge = Charge::default();
    if let Some(len) = declared {
        if len > limit {
            return Err(Refused::TooLarge);
        }
        if !budget.cover(&mut charge, len) {
            return Err(Refused::BudgetFull);
        }
    }
    let reading = async {
        let mut body = body;
        let mut first: Option<Bytes> = None;
        let mut rest: Option<BytesMut> = None;
        let mut total: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Refused::Broken(e.to_string()))?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            total += data.len() as u64;
            if total > limit {
                return Err(Refused::TooLarge);
            }
            if !budget.cover(&mut charge, total) {
                return Err(Refused::BudgetFull);
            }
            match (&mut first, &mut rest) {
                (None, _) => first = Some(data),
                (Some(head), None) => {
                    let mut joined = BytesMut::with_capacity(
                        declared.map_or(0, |d| d as usize).max(total as usize),
                    );
                    joined.extend_from_slice(head);
                    joined.extend_from_slice(&data);
                    rest = Some(joined);
                }
                (Some(_), Some(joined)) => joined.extend_from_slice(&data),
            }
        }
        Ok(match rest {
            Some(joined) => joined.freeze(),
            None => first.unwrap_or_default(),
        })
    };
    match tokio::time::timeout(timeout, reading).await {
        Ok(Ok(bytes)) => Ok((bytes, charge)),
        Ok(Err(refused)) => Err(refused),
        Err(_) => Err(Refused::Timeout),
    }
}

/// The `Content-Length` of `headers`, when present and a number.
pub fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt as _;
    use http_body_util::StreamBody;

    const MIB: u64 = 1 << 20;
    const SECOND: Duration = Duration::from_secs(1);

    /// A chunked body (no length) of `chunks` chunks of `size` bytes.
    fn chunked(
        chunks: usize,
        size: usize,
    ) -> StreamBody<
        impl futures::Stream<Item = Result<http_body::Frame<Bytes>, std::io::Error>> + Unpin,
    > {
        StreamBody::new(
            futures::stream::iter(0..chunks)
                .map(move |_| Ok(http_body::Frame::data(Bytes::from(vec![7u8; size])))),
        )
    }

    #[tokio::test]
    async fn a_declared_body_over_the_budget_is_refused_before_reading() {
        let budget = BodyBudget::new(4 * MIB);
        let held = read(
            &budget,
            Some(3 * MIB),
            chunked(3, MIB as usize),
            8 * MIB,
            SECOND,
        )
        .await
        .expect("fits");
        assert_eq!(held.0.len() as u64, 3 * MIB);
        assert_eq!(budget.in_use(), 3 * MIB);
        // The next upload does not fit beside it, whatever its own limit says.
        let refused = read(
            &budget,
            Some(2 * MIB),
            chunked(2, MIB as usize),
            8 * MIB,
            SECOND,
        )
        .await;
        assert_eq!(refused.err(), Some(Refused::BudgetFull));
        // Small bodies are still served.
        let small = read(&budget, Some(100), chunked(1, 100), 8 * MIB, SECOND)
            .await
            .expect("small");
        assert_eq!(small.0.len(), 100);
        // The budget comes back when the call is over.
        drop(held);
        assert_eq!(budget.in_use(), 0);
        assert!(
            read(
                &budget,
                Some(2 * MIB),
                chunked(2, MIB as usize),
                8 * MIB,
                SECOND
            )
            .await
            .is_ok()
        );
    }

    #[tokio::test]
    async fn a_chunked_body_is_charged_and_limited_while_it_arrives() {
        let budget = BodyBudget::new(2 * MIB);
        // No Content-Length: refused at the chunk that crosses the budget.
        let refused = read(&budget, None, chunked(64, 64 << 10), 64 * MIB, SECOND).await;
        assert_eq!(refused.err(), Some(Refused::BudgetFull));
        assert_eq!(budget.in_use(), 0, "a refused body gives its charge back");
        // ... and at the chunk that crosses the limit, whatever the budget.
        let refused = read(&budget, None, chunked(64, 64 << 10), 180 << 10, SECOND).await;
        assert_eq!(refused.err(), Some(Refused::TooLarge));
        let (bytes, charge) = read(&budget, None, chunked(4, 64 << 10), MIB, SECOND)
            .await
            .expect("fits");
        assert_eq!(bytes.len(), 256 << 10);
        assert_eq!(charge.bytes(), 256 << 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_ends_times_out() {
        let budget = BodyBudget::new(MIB);
        let never = StreamBody::new(futures::stream::pending::<
            Result<http_body::Frame<Bytes>, std::io::Error>,
        >());
        let refused = read(&budget, None, never, MIB, SECOND).await;
        assert_eq!(refused.err(), Some(Refused::Timeout));
    }
}
