//! A Function's webhook in a cluster (`spec.webhook`): the controller reads the token's
//! Secret (a `secretKeyRef` of the Function's namespace) at each reconcile and publishes only
//! its keyed digest (`faas_api::webhook::token_digest` under the platform token) in
//! `status.webhook`, where the gateway, which reads no Secret, checks calls against it. A
//! token rotated in its Secret takes effect at the Function's next reconcile.

use faas_api::{Function, SecretRef, WebhookStatus};

use crate::reconcile::Context;

/// The webhook's status for `function`, `None` when it has no enabled webhook.
pub async fn observe(function: &Function, ctx: &Context, namespace: &str) -> Option<WebhookStatus> {
    let webhook = function.spec.webhook.as_ref().filter(|w| w.enabled)?;
    let unusable = |message: String| {
        Some(WebhookStatus {
            token_digest: None,
            message: Some(message),
        })
    };
    let Some(key) = ctx.platform_token.as_deref() else {
        return unusable(
            "the controller has no platform token (the chart's Secret), so no webhook can be checked"
                .to_owned(),
        );
    };
    let reference = match webhook.token_secret.source() {
        Ok(SecretRef::Kubernetes(reference)) => reference,
        // Refused by the cluster profile of validation: nothing is rendered for it.
        Ok(other) => {
            return unusable(format!(
                "{other}: a cluster reads webhook tokens from Secrets"
            ));
        }
        Err(why) => return unusable(format!("spec.webhook.tokenSecret {why}")),
    };
    let source = SecretRef::Kubernetes(reference.clone());
    let value = match crate::secrets::key_of(&ctx.client, namespace, &reference).await {
        Ok(Ok(bytes)) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Ok(Err(_)) => None,
        Err(e) => return unusable(format!("{source}: {e}")),
    };
    let Some(value) = value else {
        return unusable(format!(
            "{source}: no such Secret key in namespace {namespace}"
        ));
    };
    let token = faas_api::webhook::token_of(&value);
    if let Some(why) = faas_api::webhook::too_short(token) {
        return unusable(format!("{source}: {why}"));
    }
    Some(WebhookStatus {
        token_digest: Some(faas_api::webhook::token_digest(key.as_bytes(), token)),
        message: None,
    })
}
