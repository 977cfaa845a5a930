//! `faas runs logs ID [-f]`: a run's whole log, printed as it is; with `-f`, followed while
//! the run goes on (a look every half second) until the run has ended and all of it is shown.

use std::time::Duration;

use crate::backend::Backend;
use crate::stdout::out;

/// Between two looks at a log being followed.
const POLL: Duration = Duration::from_millis(500);

/// Prints run `id`'s log; follows it to the run's end with `follow`.
pub async fn print(backend: &dyn Backend, id: &str, follow: bool) -> anyhow::Result<()> {
    let mut offset = 0;
    loop {
        let piece = backend.run_log(id, offset).await?;
        if !piece.text.is_empty() {
            out!("{}", piece.text)?;
        }
        let advanced = piece.next > offset;
        offset = piece.next;
        if !follow || (piece.done && !advanced) {
            return Ok(());
        }
        if !advanced {
            tokio::time::sleep(POLL).await;
        }
    }
}
