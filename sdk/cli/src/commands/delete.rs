//! `faas delete NAME`.

use crate::backend::Backend;
use crate::stdout::outln;

pub async fn run(backend: &dyn Backend, name: &str) -> anyhow::Result<()> {
    match backend.delete(name).await? {
        Some(also) => outln!("{name} deleted ({also})"),
        None => outln!("{name} deleted"),
    }
}
