//! `spec.env`: a function's environment, written either as a map (`NAME: value`) or in
//! Kubernetes' list form (`- {name: NAME, value: ...}` / `- {name: NAME, valueFrom: ...}`),
//! where an entry may come from a secret instead of the manifest: a Kubernetes Secret of the
//! function's namespace, an SSM parameter, or a Secrets Manager secret.
//!
//! The spec holds references only. Resolved values live in the executors' memory (and in a
//! container's pod spec as a `secretKeyRef`), never in the Function, so nothing that shows a
//! Function (`/system/functions`, `faas describe`, `faas list -o yaml`, the dashboard) can
//! show a secret.

use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `spec.env`, in the order written (the map form sorted by name).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Env {
    entries: Vec<EnvVar>,
}

/// One variable.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    /// The value, written in the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Where the value comes from instead: exactly one source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvSource>,
}

/// Where a variable's value comes from: exactly one of these.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvSource {
    /// A key of a Kubernetes Secret in the function's namespace (locally: the file
    /// `<name>/<key>` of `faas up --secrets DIR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
    /// An SSM Parameter Store parameter (decrypted), read with the function's own role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssm_parameter: Option<SsmParameterRef>,
    /// A Secrets Manager secret's string (or one key of it, when it is a JSON object), read
    /// with the function's own role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_manager: Option<SecretsManagerRef>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SsmParameterRef {
    /// The parameter's name (`/shop/db-password`) or ARN.
    pub name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretsManagerRef {
    /// The secret's name or ARN.
    pub secret_id: String,
    /// One key of the secret when its string is a JSON object (`password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_key: Option<String>,
}

/// One source, resolved from an [`EnvSource`] that names exactly one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SecretRef {
    Kubernetes(SecretKeyRef),
    Ssm(SsmParameterRef),
    SecretsManager(SecretsManagerRef),
}

impl fmt::Display for SecretRef {
    /// Names the secret, never its value: what errors and statuses say.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Kubernetes(r) => write!(f, "Secret {} key {}", r.name, r.key),
            SecretRef::Ssm(r) => write!(f, "SSM parameter {}", r.name),
            SecretRef::SecretsManager(r) => match &r.json_key {
                Some(key) => write!(f, "Secrets Manager secret {} key {key}", r.secret_id),
                None => write!(f, "Secrets Manager secret {}", r.secret_id),
            },
        }
    }
}

impl EnvSource {
    /// The one source this names; `Err` says what is wrong (none, or several).
    pub fn source(&self) -> Result<SecretRef, &'static str> {
        let mut found = Vec::new();
        if let Some(r) = &self.secret_key_ref {
            found.push(SecretRef::Kubernetes(r.clone()));
        }
        if let Some(r) = &self.ssm_parameter {
            found.push(SecretRef::Ssm(r.clone()));
        }
        if let Some(r) = &self.secrets_manager {
            found.push(SecretRef::SecretsManager(r.clone()));
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err("names no source: set one of secretKeyRef, ssmParameter, secretsManager"),
            _ => Err(
                "names several sources: set exactly one of secretKeyRef, ssmParameter, \
                      secretsManager",
            ),
        }
    }
}

impl Env {
    /// Every entry, in order.
    pub fn entries(&self) -> &[EnvVar] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sets `name` to the plain `value` (replacing an entry of that name, else appending).
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let entry = EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        };
        match self.entries.iter_mut().find(|e| e.name == entry.name) {
            Some(existing) => *existing = entry,
            None => self.entries.push(entry),
        }
    }

    /// Whether a variable `name` is set, by value or from a source.
    pub fn contains_key(&self, name: &str) -> bool {
        self.entries.iter().any(|e| e.name == name)
    }

    /// The written value of `name` (`None` for an entry from a source).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value.as_deref())
    }

    /// The names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    /// The entries with a written value (an entry with neither is an empty value), in order.
    pub fn plain(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .filter(|e| e.value_from.is_none())
            .map(|e| (e.name.as_str(), e.value.as_deref().unwrap_or_default()))
    }

    /// The entries from a source that names exactly one (validation refuses the others).
    pub fn secrets(&self) -> impl Iterator<Item = (&str, SecretRef)> {
        self.entries.iter().filter_map(|e| {
            let source = e.value_from.as_ref()?.source().ok()?;
            Some((e.name.as_str(), source))
        })
    }

    /// Replaces every written value with `placeholder` (what a reader not allowed the values
    /// sees); references stay, they are not secret.
    pub fn redact_values(&mut self, placeholder: &str) {
        for entry in &mut self.entries {
            if entry.value.is_some() {
                entry.value = Some(placeholder.to_owned());
            }
        }
    }
}

impl FromIterator<(String, String)> for Env {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        let mut env = Env::default();
        for (name, value) in pairs {
            env.insert(name, value);
        }
        env
    }
}

impl From<BTreeMap<String, String>> for Env {
    fn from(map: BTreeMap<String, String>) -> Self {
        map.into_iter().collect()
    }
}

impl Serialize for Env {
    /// The map form while every value is written (what users wrote before the list form
    /// existed round-trips unchanged), the list form otherwise.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let plain = self
            .entries
            .iter()
            .all(|e| e.value_from.is_none() && e.value.is_some());
        let mut names: Vec<&str> = self.names().collect();
        names.sort_unstable();
        names.dedup();
        if plain && names.len() == self.entries.len() {
            let mut sorted: Vec<&EnvVar> = self.entries.iter().collect();
            sorted.sort_by(|a, b| a.name.cmp(&b.name));
            let mut map = serializer.serialize_map(Some(sorted.len()))?;
            for entry in sorted {
                map.serialize_entry(&entry.name, entry.value.as_deref().unwrap_or_default())?;
            }
            map.end()
        } else {
            let mut seq = serializer.serialize_seq(Some(self.entries.len()))?;
            for entry in &self.entries {
                seq.serialize_element(entry)?;
            }
            seq.end()
        }
    }
}

impl<'de> Deserialize<'de> for Env {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvVisitor;
        impl<'de> Visitor<'de> for EnvVisitor {
            type Value = Env;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a map of names to values, or a list of {name, value} / {name, valueFrom}",
                )
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Env, A::Error> {
                let mut pairs = BTreeMap::new();
                while let Some((name, value)) = map.next_entry::<String, String>()? {
                    if pairs.insert(name.clone(), value).is_some() {
                        return Err(de::Error::custom(format!("{name} is set twice")));
                    }
                }
                Ok(pairs.into())
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Env, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = seq.next_element::<EnvVar>()? {
                    entries.push(entry);
                }
                Ok(Env { entries })
            }

            fn visit_unit<E: de::Error>(self) -> Result<Env, E> {
                Ok(Env::default())
            }
        }
        deserializer.deserialize_any(EnvVisitor)
    }
}

impl JsonSchema for Env {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Env".into()
    }

    /// Either form: a structural schema cannot say "object or array", so the API server
    /// keeps what is there and the platform's validation (CLI, controller, gateway) checks
    /// it, naming the entry.
    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Environment variables: a map of NAME: value, or a list of \
                {name, value} / {name, valueFrom: {secretKeyRef: {name, key}} | \
                {ssmParameter: {name}} | {secretsManager: {secretId, jsonKey}}}.",
            "x-kubernetes-preserve-unknown-fields": true
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_form_reads_and_round_trips_as_a_map() {
        let env: Env = serde_yaml::from_str("B: two\nA: one\n").expect("a map");
        assert_eq!(
            env.plain().collect::<Vec<_>>(),
            [("A", "one"), ("B", "two")]
        );
        assert_eq!(
            serde_json::to_value(&env).expect("serializes"),
            serde_json::json!({"A": "one", "B": "two"})
        );
    }

    #[test]
    fn the_list_form_takes_values_and_sources() {
        let env: Env = serde_yaml::from_str(
            "- {name: LOG_LEVEL, value: debug}\n\
             - name: DB_PASSWORD\n  valueFrom: {secretKeyRef: {name: db, key: password}}\n\
             - name: API_KEY\n  valueFrom: {ssmParameter: {name: /shop/api-key}}\n\
             - name: TOKEN\n  valueFrom: {secretsManager: {secretId: shop/tokens, jsonKey: stripe}}\n",
        )
        .expect("a list");
        assert_eq!(env.plain().collect::<Vec<_>>(), [("LOG_LEVEL", "debug")]);
        let secrets: Vec<(&str, String)> = env.secrets().map(|(n, s)| (n, s.to_string())).collect();
        assert_eq!(
            secrets,
            [
                ("DB_PASSWORD", "Secret db key password".to_owned()),
                ("API_KEY", "SSM parameter /shop/api-key".to_owned()),
                (
                    "TOKEN",
                    "Secrets Manager secret shop/tokens key stripe".to_owned()
                ),
            ]
        );
        // With a source, it stays a list (in order) when written back.
        let back = serde_json::to_value(&env).expect("serializes");
        assert_eq!(back[1]["valueFrom"]["secretKeyRef"]["key"], "password");
        assert_eq!(
            serde_json::from_value::<Env>(back).expect("reads back"),
            env
        );
    }

    #[test]
    fn a_wrong_entry_is_refused_naming_what_is_wrong() {
        let unknown = serde_yaml::from_str::<Env>("- {name: A, valeu: x}\n")
            .expect_err("unknown field")
            .to_string();
        assert!(unknown.contains("valeu"), "{unknown}");
        let source = serde_yaml::from_str::<Env>(
            "- name: A\n  valueFrom: {configMapKeyRef: {name: c, key: k}}\n",
        )
        .expect_err("a source faas does not read")
        .to_string();
        assert!(source.contains("configMapKeyRef"), "{source}");
        let twice = EnvSource {
            ssm_parameter: Some(SsmParameterRef { name: "/a".into() }),
            secrets_manager: Some(SecretsManagerRef {
                secret_id: "a".into(),
                json_key: None,
            }),
            ..EnvSource::default()
        };
        assert!(twice.source().expect_err("two sources").contains("several"));
        assert!(
            EnvSource::default()
                .source()
                .expect_err("none")
                .contains("no source")
        );
    }

    #[test]
    fn redaction_hides_written_values_and_keeps_references() {
        let mut env: Env = serde_yaml::from_str(
            "- {name: PLAIN, value: visible}\n\
             - name: S\n  valueFrom: {ssmParameter: {name: /p}}\n",
        )
        .expect("a list");
        env.redact_values("(hidden)");
        assert_eq!(env.get("PLAIN"), Some("(hidden)"));
        assert_eq!(env.secrets().count(), 1);
    }
}
