//! Typed resource limits of a function, with the platform defaults, and the parsers for the
//! string-typed durations (`"30s"`) and byte quantities (`"128Mi"`) of the spec.

use std::time::Duration;

use crate::function::FunctionSpec;
use crate::validate::ValidationErrors;

/// Wall-clock limit of one invocation when `spec.timeout` is absent.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Smallest accepted `spec.timeout`.
pub const MIN_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest accepted `spec.timeout` of a WASM function, and the platform's default cap for
/// every function (Lambda's limit).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Largest `spec.timeout` a container function (a Lambda handler, a job) may have where the
/// platform team raised the cap (`faas up --max-timeout`, the chart's
/// `controller.maxTimeout`): a day, the longest call the platform forwards.
pub const MAX_LONG_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Why `timeout` is over `cap`, the platform's cap on `spec.timeout` (`raise_with` says where
/// it is set), if it is.
pub fn over_timeout_cap(timeout: Duration, cap: Duration, raise_with: &str) -> Option<String> {
    (timeout > cap).then(|| {
        format!(
            "{} is over this platform's cap of {} ({raise_with})",
            humantime::format_duration(timeout),
            humantime::format_duration(cap)
        )
    })
}

const KI: u64 = 1 << 10;
const MI: u64 = 1 << 20;
const GI: u64 = 1 << 30;

/// Memory cap when `spec.memory` is absent: 128 MiB.
pub const DEFAULT_MEMORY_BYTES: u64 = 128 * MI;
/// Smallest accepted `spec.memory`: 1 MiB.
pub const MIN_MEMORY_BYTES: u64 = MI;
/// Largest accepted `spec.memory`: 4 GiB.
pub const MAX_MEMORY_BYTES: u64 = 4 * GI;

/// In-flight invocations per replica when `spec.concurrency` is absent.
pub const DEFAULT_CONCURRENCY: u32 = 100;
/// Largest accepted `spec.concurrency`.
pub const MAX_CONCURRENCY: u32 = 10_000;
/// Largest accepted `spec.runtime.container.perProcessConcurrency`.
pub const MAX_PER_PROCESS_CONCURRENCY: u32 = 1000;

/// Largest request body when `spec.http.maxBodySize` is absent: 6 MiB, like Lambda.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 6 * MI;
/// Largest accepted `spec.http.maxBodySize`: 100 MiB.
pub const MAX_MAX_BODY_BYTES: u64 = 100 * MI;

/// The typed limits of a function, defaults applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock limit of one invocation.
    pub timeout: Duration,
    /// WASM linear-memory cap, or the container memory limit, in bytes.
    pub memory_bytes: u64,
    /// Invocations in flight per replica.
    pub concurrency: u32,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: u64,
    /// Invocations one Lambda handler process serves at once
    /// (`spec.runtime.container.perProcessConcurrency`); 1 for every other kind.
    pub per_process: u32,
}

impl Limits {
    /// Handler processes needed for `concurrency` invocations in flight, `per_process` each.
    pub fn processes(&self) -> u32 {
        self.concurrency.max(1).div_ceil(self.per_process.max(1))
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: DEFAULT_TIMEOUT,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            concurrency: DEFAULT_CONCURRENCY,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            per_process: 1,
        }
    }
}

impl FunctionSpec {
    /// The typed limits of this function, defaults applied. Fails (naming each field) when a value
    /// does not parse or is out of the accepted range; never fails on a spec that passed
    /// [`crate::validate`].
    pub fn limits(&self) -> Result<Limits, ValidationErrors> {
        self.limits_in(None)
    }

    /// [`Self::limits`] where the function runs: `pool_memory_bytes` is the memory of the
    /// runtime pool pod a WASM function shares with others (a cluster), `None` where it has
    /// a host to itself (local mode). In a pool, an absent `spec.concurrency` becomes as
    /// many instances at `spec.memory` as fit the pod, at most [`DEFAULT_CONCURRENCY`], so
    /// a function deployed with the defaults runs; an explicit one is kept (and refused by
    /// the cluster profile when it does not fit). The controller, the gateway and the pool
    /// pods all compute the limits here, so they admit the same number of requests.
    pub fn limits_in(&self, pool_memory_bytes: Option<u64>) -> Result<Limits, ValidationErrors> {
        let mut errs = ValidationErrors::default();
        let mut limits = self.collect_limits(&mut errs);
        if let Some(pool_memory) = pool_memory_bytes
            && self.runtime.wasm.is_some()
            && self.concurrency.is_none()
        {
            let fits = pool_memory / limits.memory_bytes.max(1);
            limits.concurrency = u32::try_from(fits)
                .unwrap_or(u32::MAX)
                .clamp(1, DEFAULT_CONCURRENCY);
        }
        errs.into_result().map(|()| limits)
    }

    /// Computes the limits, recording problems in `errs` (falling back to defaults for the fields
    /// in error). Shared with validation so both always agree.
    pub(crate) fn collect_limits(&self, errs: &mut ValidationErrors) -> Limits {
        let mut limits = Limits::default();

        if let Some(t) = &self.timeout {
            // A container may run a long job; a WASM instance in a shared pool may not.
            let (max, shown) = match self.runtime.container {
                Some(_) => (MAX_LONG_TIMEOUT, "24h for a container function"),
                None => (MAX_TIMEOUT, "15m for a WASM function"),
            };
            match parse_duration(t) {
                Ok(d) if (MIN_TIMEOUT..=max).contains(&d) => limits.timeout = d,
                Ok(_) => errs.push(
                    "spec.timeout",
                    format!("must be between 1s and {shown}, got {t:?}"),
                ),
                Err(m) => errs.push("spec.timeout", m),
            }
        }
        if let Some(container) = &self.runtime.container
            && let Some(n) = container.per_process_concurrency
        {
            let path = "spec.runtime.container.perProcessConcurrency";
            if container.mode != crate::function::ContainerMode::Lambda {
                errs.push(
                    path,
                    "applies to mode: lambda only (a Lambda handler serving several invocations \
                     at once); an http server takes spec.concurrency requests itself",
                );
            } else if !(1..=MAX_PER_PROCESS_CONCURRENCY).contains(&n) {
                errs.push(
                    path,
                    format!("must be between 1 and {MAX_PER_PROCESS_CONCURRENCY}, got {n}"),
                );
            } else {
                limits.per_process = n;
            }
        }
        if let Some(m) = &self.memory {
            match parse_quantity(m) {
                Ok(b) if (MIN_MEMORY_BYTES..=MAX_MEMORY_BYTES).contains(&b) => {
                    limits.memory_bytes = b;
                }
                Ok(_) => errs.push(
                    "spec.memory",
                    format!("must be between 1Mi and 4Gi, got {m:?}"),
                ),
                Err(e) => errs.push("spec.memory", e),
            }
        }
        if let Some(c) = self.concurrency {
            if (1..=MAX_CONCURRENCY).contains(&c) {
                limits.concurrency = c;
            } else {
                errs.push(
                    "spec.concurrency",
                    format!("must be between 1 and {MAX_CONCURRENCY}, got {c}"),
                );
            }
        }
        if let Some(s) = self.http.as_ref().and_then(|h| h.max_body_size.as_ref()) {
            match parse_quantity(s) {
                Ok(b) if (1..=MAX_MAX_BODY_BYTES).contains(&b) => limits.max_body_bytes = b,
                Ok(_) => errs.push(
                    "spec.http.maxBodySize",
                    format!("must be between 1 and 100Mi, got {s:?}"),
                ),
                Err(e) => errs.push("spec.http.maxBodySize", e),
            }
        }
        limits
    }
}

/// Why a duration does not parse; reads `invalid duration "30x": <why>`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DurationError {
    #[error("invalid duration {0:?}: empty (write e.g. \"30s\", \"5m\", \"500ms\")")]
    Empty(String),
    #[error("invalid duration {0:?}: must not be negative")]
    Negative(String),
    #[error("invalid duration {input:?}: {why}")]
    Syntax {
        input: String,
        why: humantime::DurationError,
    },
}

/// Parses a duration written like `30s`, `5m`, `1h`, `500ms`, `1h30m` (humantime syntax).
///
/// The error reads `invalid duration "30x": <why>`.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    if s.trim().is_empty() {
        return Err(DurationError::Empty(s.to_owned()));
    }
    if s.trim().starts_with('-') {
        return Err(DurationError::Negative(s.to_owned()));
    }
    humantime::parse_duration(s.trim()).map_err(|why| DurationError::Syntax {
        input: s.to_owned(),
        why,
    })
}

/// Why a byte quantity does not parse; reads `invalid quantity "12MB": <why>`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid quantity {input:?}: {why}")]
pub struct QuantityError {
    pub input: String,
    pub why: QuantityProblem,
}

/// What is wrong with a quantity.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityProblem {
    #[error("empty (write e.g. \"128Mi\", \"1Gi\", \"512k\")")]
    Empty,
    #[error("must not be negative")]
    Negative,
    #[error("\"m\" means thousandths; bytes need e.g. \"Mi\" or \"M\"")]
    Milli,
    #[error("unknown suffix {0:?} (expected one of Ki, Mi, Gi, Ti, Pi, Ei, k, M, G, T, P, E)")]
    UnknownSuffix(String),
    #[error("expected a number followed by an optional unit")]
    NotANumber,
    #[error("too many digits")]
    TooManyDigits,
    #[error("too large")]
    TooLarge,
}

/// Parses a Kubernetes byte quantity into bytes: plain bytes (`1048576`), binary suffixes
/// `Ki Mi Gi Ti Pi Ei`, decimal suffixes `k M G T P E`; a decimal fraction (`1.5Gi`) is allowed and
/// rounded up to a whole byte, as Kubernetes does.
///
/// The error reads `invalid quantity "12MB": <why>`.
pub fn parse_quantity(s: &str) -> Result<u64, QuantityError> {
    let err = |why: QuantityProblem| QuantityError {
        input: s.to_owned(),
        why,
    };
    let t = s.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    if t.is_empty() {
        return Err(err(QuantityProblem::Empty));
    }
    if t.starts_with('-') {
        return Err(err(QuantityProblem::Negative));
    }
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, suffix) = t.split_at(num_end);
    let multiplier: u64 = match suffix {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        "Ki" => KI,
        "Mi" => MI,
        "Gi" => GI,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        "m" => {
            return Err(err(QuantityProblem::Milli));
        }
        other => {
            return Err(err(QuantityProblem::UnknownSuffix(other.to_owned())));
        }
    };
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
        return Err(err(QuantityProblem::NotANumber));
    }
    if frac_part.len() > 18 || int_part.len() > 20 {
        return Err(err(QuantityProblem::TooManyDigits));
    }
    let digits = |d: &str| -> u128 {
        d.bytes()
            .fold(0u128, |acc, b| acc * 10 + u128::from(b - b'0'))
    };
    // At most 20 + 18 digits: fits in a u128; the product with the multiplier may not.
    let scale = 10u128.pow(frac_part.len() as u32);
    let mantissa = digits(int_part) * scale + digits(frac_part);
    let bytes = mantissa
        .checked_mul(u128::from(multiplier))
        .map(|v| v.div_ceil(scale))
        .ok_or_else(|| err(QuantityProblem::TooLarge))?;
    u64::try_from(bytes).map_err(|_| err(QuantityProblem::TooLarge))
}

/// Formats a byte count the way users write it (`4Gi`, `128Mi`, `6Ki`, `1000`).
pub fn format_bytes(bytes: u64) -> String {
    for (unit, size) in [
        ("Ei", 1u64 << 60),
        ("Pi", 1 << 50),
        ("Ti", 1 << 40),
        ("Gi", GI),
        ("Mi", MI),
        ("Ki", KI),
    ] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::function::HttpSpec;

    #[test]
    fn durations() {
        for (s, d) in [
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("1h", Duration::from_secs(3600)),
            ("500ms", Duration::from_millis(500)),
            ("1h30m", Duration::from_secs(5400)),
            ("1m 30s", Duration::from_secs(90)),
            ("0s", Duration::ZERO),
        ] {
            assert_eq!(parse_duration(s), Ok(d), "{s}");
        }
        for s in ["", " ", "30", "30x", "-5s", "s", "five minutes"] {
            let e = parse_duration(s).expect_err(s).to_string();
            assert!(e.starts_with(&format!("invalid duration {s:?}: ")), "{e}");
        }
    }

    #[test]
    fn quantities() {
        for (s, b) in [
            ("0", 0),
            ("1", 1),
            ("1048576", MI),
            ("1Ki", 1024),
            ("128Mi", 128 * MI),
            ("4Gi", 4 * GI),
            ("1Ti", 1 << 40),
            ("1k", 1000),
            ("1M", 1_000_000),
            ("2G", 2_000_000_000),
            ("1.5Gi", 3 * GI / 2),
            ("0.5Ki", 512),
            ("0.1", 1),
            ("1.", 1),
            (".5Ki", 512),
            ("+3Mi", 3 * MI),
            ("15Ei", 15 << 60),
            ("18446744073709551615", u64::MAX),
        ] {
            assert_eq!(parse_quantity(s), Ok(b), "{s}");
        }
        for s in [
            "", "Mi", "12MB", "12mi", "12K", "100m", "-1Mi", "1.2.3", "1 Mi", "16Ei", ".", "1e3",
        ] {
            let e = parse_quantity(s).expect_err(s).to_string();
            assert!(e.starts_with(&format!("invalid quantity {s:?}: ")), "{e}");
        }
    }

    #[test]
    fn bytes_format() {
        assert_eq!(format_bytes(4 * GI), "4Gi");
        assert_eq!(format_bytes(128 * MI), "128Mi");
        assert_eq!(format_bytes(1536), "1536");
        assert_eq!(format_bytes(2048), "2Ki");
        assert_eq!(format_bytes(1000), "1000");
        assert_eq!(format_bytes(0), "0");
    }

    #[test]
    fn defaults_apply() {
        let spec = FunctionSpec::default();
        let l = spec.limits().expect("defaults");
        assert_eq!(l.timeout, Duration::from_secs(30));
        assert_eq!(l.memory_bytes, 128 * 1024 * 1024);
        assert_eq!(l.concurrency, 100);
        assert_eq!(l.max_body_bytes, 6 * 1024 * 1024);
        assert_eq!(l, Limits::default());
    }

    #[test]
    fn a_wasm_function_in_a_pool_defaults_to_the_concurrency_its_pod_fits() {
        let mut spec = FunctionSpec {
            runtime: crate::function::RuntimeSpec {
                wasm: Some(crate::function::WasmRuntime::default()),
                container: None,
            },
            ..FunctionSpec::default()
        };
        let concurrency = |spec: &FunctionSpec, pool: Option<u64>| {
            spec.limits_in(pool).expect("valid").concurrency
        };
        // 1Gi / 128Mi; a host of its own keeps the default; a big pod caps at the default.
        assert_eq!(concurrency(&spec, Some(GI)), 8);
        assert_eq!(concurrency(&spec, None), DEFAULT_CONCURRENCY);
        assert_eq!(concurrency(&spec, Some(64 * GI)), DEFAULT_CONCURRENCY);
        // Memory larger than the pod: one (the cluster profile refuses it, naming memory).
        spec.memory = Some("2Gi".into());
        assert_eq!(concurrency(&spec, Some(GI)), 1);
        // What the author wrote stays, fitting or not.
        spec.concurrency = Some(50);
        assert_eq!(concurrency(&spec, Some(GI)), 50);
        // A container function has its pod's memory to itself.
        spec.concurrency = None;
        spec.runtime = crate::function::RuntimeSpec {
            wasm: None,
            container: Some(crate::function::ContainerRuntime::default()),
        };
        assert_eq!(concurrency(&spec, Some(GI)), DEFAULT_CONCURRENCY);
    }

    #[test]
    fn explicit_values() {
        let spec = FunctionSpec {
            timeout: Some("2m".into()),
            memory: Some("256Mi".into()),
            concurrency: Some(7),
            http: Some(HttpSpec {
                max_body_size: Some("1Mi".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            spec.limits(),
            Ok(Limits {
                timeout: Duration::from_secs(120),
                memory_bytes: 256 * MI,
                concurrency: 7,
                max_body_bytes: MI,
                per_process: 1,
            })
        );
    }

    #[test]
    fn per_process_concurrency_is_for_lambda_handlers_and_sizes_their_processes() {
        let lambda = |n: Option<u32>, mode| FunctionSpec {
            runtime: crate::function::RuntimeSpec {
                wasm: None,
                container: Some(crate::function::ContainerRuntime {
                    command: vec!["handler".into()],
                    mode,
                    per_process_concurrency: n,
                    ..Default::default()
                }),
            },
            concurrency: Some(10),
            ..Default::default()
        };
        use crate::function::ContainerMode::{Http, Lambda};
        let limits = lambda(Some(4), Lambda).limits().expect("valid");
        assert_eq!((limits.per_process, limits.processes()), (4, 3));
        assert_eq!(
            lambda(None, Lambda).limits().expect("valid").processes(),
            10
        );
        for (n, mode, says) in [
            (Some(4), Http, "mode: lambda only"),
            (Some(0), Lambda, "between 1 and 1000"),
            (Some(1001), Lambda, "between 1 and 1000"),
        ] {
            let error = lambda(n, mode).limits().expect_err("refused").to_string();
            assert!(
                error.contains("spec.runtime.container.perProcessConcurrency")
                    && error.contains(says),
                "{error}"
            );
        }
    }

    #[test]
    fn errors_name_fields() {
        let spec = FunctionSpec {
            timeout: Some("30x".into()),
            memory: Some("8Gi".into()),
            concurrency: Some(0),
            http: Some(HttpSpec {
                max_body_size: Some("1Gi".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let e = spec.limits().expect_err("invalid");
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.timeout",
                "spec.memory",
                "spec.concurrency",
                "spec.http.maxBodySize"
            ]
        );
        assert!(
            e.to_string()
                .starts_with("spec.timeout: invalid duration \"30x\": ")
        );
    }
}
