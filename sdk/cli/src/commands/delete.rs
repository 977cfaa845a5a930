//! `faas delete NAME`.

use crate::backend::Backend;

pub async fn run(backend: &dyn Backend, name: &str) -> anyhow::Result<()> {
    match backend.delete(name).await? {
        Some(also) => println!("{name} deleted ({also})"),
        None => println!("{name} deleted"),
    }
    Ok(())
}
