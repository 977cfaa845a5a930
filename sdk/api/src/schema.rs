//! Schema helpers for the CRDs.

use schemars::{Schema, SchemaGenerator, json_schema};

/// Schema of a free-form JSON value (e.g. `Schedule.payload`): Kubernetes keeps whatever is
/// there instead of pruning it.
pub(crate) fn any_json(_generator: &mut SchemaGenerator) -> Schema {
    json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}

/// Schema of an object of free-form values (`Schedule.options`, a run's options).
pub(crate) fn any_json_map(_generator: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true })
}
