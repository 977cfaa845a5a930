//! The old paths of local mode, kept for the CLI until the merge: what was here moved to
//! [`crate::host`] (composition roots), [`crate::source::folder`] (the folder watcher),
//! [`crate::build`] (cargo builds) and [`crate::lifecycle`] (signals and drain).

// kept for the CLI until the merge
pub use crate::build::build_all;
// kept for the CLI until the merge
pub use crate::host::{HostOptions as LocalOptions, run};
// kept for the CLI until the merge
pub use crate::source::FunctionSource;
// kept for the CLI until the merge
pub use crate::source::folder::artifact_path;
