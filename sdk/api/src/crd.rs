//! The CustomResourceDefinitions as the API server gets them: the schema derived from the
//! types, plus CEL rules (`x-kubernetes-validations`) for what a schema alone cannot say, so
//! `kubectl apply` of a broken Function fails at once, naming the field, instead of
//! reconciling into a status that says why. The same checks live in [`crate::validate`]
//! (local mode and `faas deploy` run them); these are the ones a cluster can enforce itself.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, ValidationRule,
};
use kube::CustomResourceExt;

use crate::{Function, FunctionRun};

/// (path from `spec`, rule, message). `[]` steps into an array's items.
const FUNCTION_RULES: &[(&[&str], &str, &str)] = &[
    (
        &["runtime"],
        "has(self.wasm) != has(self.container)",
        "spec.runtime: exactly one of wasm or container must be set",
    ),
    (
        &["runtime", "container"],
        "has(self.image)",
        "spec.runtime.container.image is required in a cluster (command and args are local \
         mode's stand-in for the image)",
    ),
    (
        &["runtime", "container"],
        "(has(self.mode) && self.mode != 'http') || has(self.port)",
        "spec.runtime.container.port is required in http mode",
    ),
    (
        &["runtime", "container"],
        "!has(self.mode) || self.mode != 'cgi'",
        "spec.runtime.container.mode: cgi is local mode only; use http or lambda in a cluster \
         (or job for a script that runs to completion)",
    ),
    (
        &["runtime", "wasm"],
        "!has(self.dirs) || size(self.dirs) == 0",
        "spec.runtime.wasm.dirs[].hostPath: host directories are local mode only; in a cluster \
         a guest gets no host filesystem",
    ),
    (
        &["runtime", "wasm"],
        "!self.source.startsWith('oci://') || self.source.matches('@sha256:[0-9a-fA-F]{64}$')",
        "spec.runtime.wasm.source: an oci:// artifact must be pinned by digest in a cluster \
         (oci://registry/repository@sha256:<64 hex>)",
    ),
    (
        &["placement", "tolerations", "[]"],
        "size(self.key) > 0",
        "spec.placement.tolerations[].key is required: an empty key tolerates every taint",
    ),
    (
        &["scale"],
        "!has(self.max) || !has(self.min) || self.max >= self.min",
        "spec.scale.max must be at least spec.scale.min",
    ),
    (
        &["schedules"],
        "self.all(s, self.filter(t, t.name == s.name).size() == 1)",
        "spec.schedules: names must be unique",
    ),
    (
        &["triggers", "sqs", "[]"],
        "!has(self.batchSize) || (self.batchSize >= 1 && self.batchSize <= 10000)",
        "spec.triggers.sqs[].batchSize must be between 1 and 10000",
    ),
];

/// The `Function` CRD with its CEL rules.
pub fn function_crd() -> CustomResourceDefinition {
    let mut crd = Function::crd();
    for (path, rule, message) in FUNCTION_RULES {
        let Some(node) = spec_schema(&mut crd).and_then(|spec| descend(spec, path)) else {
            // A rule for a field that does not exist is a bug in this table: the CRD test
            // (every rule is present) catches it.
            continue;
        };
        node.x_kubernetes_validations
            .get_or_insert_with(Vec::new)
            .push(ValidationRule {
                rule: (*rule).to_owned(),
                message: Some((*message).to_owned()),
                ..ValidationRule::default()
            });
    }
    crd
}

/// The `FunctionRun` CRD.
pub fn function_run_crd() -> CustomResourceDefinition {
    FunctionRun::crd()
}

fn spec_schema(crd: &mut CustomResourceDefinition) -> Option<&mut JSONSchemaProps> {
    crd.spec
        .versions
        .first_mut()?
        .schema
        .as_mut()?
        .open_api_v3_schema
        .as_mut()?
        .properties
        .as_mut()?
        .get_mut("spec")
}

fn descend<'a>(
    mut node: &'a mut JSONSchemaProps,
    path: &[&str],
) -> Option<&'a mut JSONSchemaProps> {
    for step in path {
        node = if *step == "[]" {
            match node.items.as_mut()? {
                JSONSchemaPropsOrArray::Schema(items) => items.as_mut(),
                JSONSchemaPropsOrArray::Schemas(_) => return None,
            }
        } else {
            node.properties.as_mut()?.get_mut(*step)?
        };
    }
    Some(node)
}

/// How many CEL rules [`function_crd`] adds (for the test that each one found its field).
pub fn function_rule_count() -> usize {
    FUNCTION_RULES.len()
}
