//! The function's ServiceAccount: its identity in the cluster and, through IRSA, in AWS.

use std::collections::BTreeMap;

use faas_api::Function;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{labels, object_name};

pub use faas_api::contract::{REGIONAL_STS_ANNOTATION, ROLE_ARN_ANNOTATION};

/// `fn-<name>`, annotated with the function's IAM role when it has one.
pub fn service_account(function: &Function) -> ServiceAccount {
    let name = function.metadata.name.as_deref().unwrap_or_default();
    let annotations: BTreeMap<String, String> = function
        .spec
        .iam
        .as_ref()
        .map(|iam| {
            [
                (ROLE_ARN_ANNOTATION.to_owned(), iam.role_arn.clone()),
                (REGIONAL_STS_ANNOTATION.to_owned(), "true".to_owned()),
            ]
            .into_iter()
            .collect()
        })
        .unwrap_or_default();
    ServiceAccount {
        metadata: ObjectMeta {
            name: Some(object_name(name)),
            namespace: function.metadata.namespace.clone(),
            labels: Some(labels(name)),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_api::{FunctionSpec, IamSpec};

    #[test]
    fn the_role_arn_becomes_irsa_annotations() {
        let mut f = Function::new("resize", FunctionSpec::default());
        f.metadata.namespace = Some("team-a".into());
        let sa = service_account(&f);
        assert_eq!(sa.metadata.name.as_deref(), Some("fn-resize"));
        assert_eq!(sa.metadata.namespace.as_deref(), Some("team-a"));
        assert_eq!(sa.metadata.annotations, None, "no role, no annotations");
        f.spec.iam = Some(IamSpec {
            role_arn: "arn:aws:iam::123456789012:role/resize".into(),
        });
        let annotations = service_account(&f).metadata.annotations.expect("annotated");
        assert_eq!(
            annotations[ROLE_ARN_ANNOTATION],
            "arn:aws:iam::123456789012:role/resize"
        );
        assert_eq!(annotations[REGIONAL_STS_ANNOTATION], "true");
        assert_eq!(
            service_account(&f).metadata.labels.expect("labels")["faas.dev/function"],
            "resize"
        );
    }
}
