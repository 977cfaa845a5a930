//! Loading `Function` manifests from YAML text, files and directories.
//!
//! - [`parse_functions`] reads multi-document YAML (`---`) strictly: every non-empty document
//!   must be a `faas.dev/v1alpha1` `Function` (documents of kind `FunctionRun` are skipped), no
//!   unknown field is accepted, and every function must pass [`validate`].
//! - [`load_path`] reads one file strictly, or scans a directory for `*.yaml`/`*.yml` files, where
//!   documents of other tools (any `apiVersion` outside `faas.dev`) are skipped silently. One
//!   broken file never hides the others: each file gets its own result.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::function::Function;
use crate::validate::{FieldError, ValidationErrors, validate};
use crate::{API_VERSION, GROUP};

/// Why a manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A document is not valid YAML, or does not fit the `Function` schema (unknown field, wrong
    /// type, missing field). `message` holds serde_yaml's text, with the field path and the
    /// line/column. `doc_index` counts documents from 0.
    #[error("{origin} (document {}): {message}", doc_index + 1)]
    Yaml {
        origin: String,
        doc_index: usize,
        message: String,
    },
    /// A document is not a `faas.dev/v1alpha1` `Function`. `doc_index` counts documents from 0.
    #[error(
        "{origin} (document {}): expected apiVersion \"{API_VERSION}\" and kind \"Function\", got apiVersion {api_version:?} and kind {kind:?}",
        doc_index + 1
    )]
    WrongKind {
        origin: String,
        doc_index: usize,
        api_version: String,
        kind: String,
    },
    /// A `Function` parsed but failed validation.
    #[error("{origin}: Function {name:?} is invalid: {errors}")]
    Invalid {
        origin: String,
        name: String,
        #[source]
        errors: ValidationErrors,
    },
}

/// The outcome of loading one file.
#[derive(Debug)]
pub struct LoadedFile {
    pub path: PathBuf,
    pub result: Result<Vec<Function>, ManifestError>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every non-empty document must be a faas.dev Function (or FunctionRun, skipped).
    Strict,
    /// Documents outside `faas.dev` are skipped.
    Scan,
}

/// Parses every `Function` in multi-document YAML `text`. `origin` names the source in errors
/// (usually the file path). Empty documents and `FunctionRun` documents are skipped;
/// `metadata.namespace` defaults to `"default"`; each function is validated.
pub fn parse_functions(text: &str, origin: &str) -> Result<Vec<Function>, ManifestError> {
    parse(text, origin, Mode::Strict)
}

/// Reads and parses one manifest file (strictly, like [`parse_functions`]).
pub fn load_file(path: &Path) -> Result<Vec<Function>, ManifestError> {
    let text = read(path)?;
    parse_functions(&text, &path.display().to_string())
}

/// Loads `path`: a file is loaded strictly (see [`load_file`]); a directory is scanned
/// recursively for `*.yaml`/`*.yml` files, in sorted order, skipping hidden entries, `target/`
/// and `node_modules/` (and not following symlinked directories). In a scan, documents whose
/// `apiVersion` is outside `faas.dev` are ignored, and files holding no `Function` are left out
/// of the result; files that fail are reported, each on its own.
pub fn load_path(path: &Path) -> Vec<LoadedFile> {
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => scan_dir(path),
        Ok(_) => vec![LoadedFile {
            path: path.to_path_buf(),
            result: load_file(path),
        }],
        Err(source) => vec![LoadedFile {
            path: path.to_path_buf(),
            result: Err(ManifestError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }],
    }
}

fn read(path: &Path) -> Result<String, ManifestError> {
    fs::read_to_string(path).map_err(|source| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn scan_dir(root: &Path) -> Vec<LoadedFile> {
    let Listing {
        files,
        errors: mut out,
        ..
    } = list_manifest_files(root);
    out.extend(files.iter().filter_map(|file| scan_file(file)));
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// What a directory scan reads (see [`load_path`]).
#[derive(Debug, Default)]
pub struct Listing {
    /// The `*.yaml`/`*.yml` files, sorted.
    pub files: Vec<PathBuf>,
    /// Every directory walked, the root first: where a new manifest could appear.
    pub dirs: Vec<PathBuf>,
    /// The directories that could not be read.
    pub errors: Vec<LoadedFile>,
}

/// The files and directories a directory scan reads (see [`load_path`]). Lets a watcher
/// stat files and re-parse only changed ones, and watch the directories for new ones.
pub fn list_manifest_files(root: &Path) -> Listing {
    let mut listing = Listing::default();
    walk(root, &mut listing);
    listing.files.sort();
    listing
}

/// Whether a directory scan reads the file at `path`, by its name: `*.yaml` and `*.yml`.
pub fn has_manifest_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

/// Whether a directory scan leaves the entry `name` out, with everything under it: hidden
/// entries (editors' swap files, `.git`, a state directory), `target/` and `node_modules/`
/// (build output and dependencies, which hold no manifest of the project's own).
pub fn is_skipped(name: &str) -> bool {
    name.starts_with('.') || name == "target" || name == "node_modules"
}

/// Parses one file the way a directory scan does: documents outside `faas.dev` are ignored,
/// and a file with no `Function` at all gives `None`.
pub fn scan_file(file: &Path) -> Option<LoadedFile> {
    let text = match read(file) {
        Ok(t) => t,
        Err(e) => {
            return Some(LoadedFile {
                path: file.to_path_buf(),
                result: Err(e),
            });
        }
    };
    // A file that never mentions the API group cannot hold a Function: leave other tools'
    // YAML alone even when it is not valid YAML on its own (templates, ...).
    if !text.contains(GROUP) {
        return None;
    }
    let result = parse(&text, &file.display().to_string(), Mode::Scan);
    if matches!(&result, Ok(fns) if fns.is_empty()) {
        return None;
    }
    Some(LoadedFile {
        path: file.to_path_buf(),
        result,
    })
}

fn walk(dir: &Path, listing: &mut Listing) {
    let io_err = |path: &Path, source| LoadedFile {
        path: path.to_path_buf(),
        result: Err(ManifestError::Io {
            path: path.to_path_buf(),
            source,
        }),
    };
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            listing.errors.push(io_err(dir, e));
            return;
        }
    };
    listing.dirs.push(dir.to_path_buf());
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                listing.errors.push(io_err(dir, e));
                continue;
            }
        };
        if is_skipped(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let path = entry.path();
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            walk(&path, listing);
            continue;
        }
        let is_file = file_type.is_file()
            || (file_type.is_symlink() && fs::metadata(&path).is_ok_and(|m| m.is_file()));
        if is_file && has_manifest_extension(&path) {
            listing.files.push(path);
        }
    }
}

/// serde_yaml's message (field path, what is wrong, line and column), with its backtick quoting
/// turned into double quotes: `spec.runtime.wasm: unknown field "sorce", expected one of ...`.
fn yaml_error(origin: &str, doc_index: usize, e: &serde_yaml::Error) -> ManifestError {
    ManifestError::Yaml {
        origin: origin.to_string(),
        doc_index,
        message: e.to_string().replace('`', "\""),
    }
}

fn parse(text: &str, origin: &str, mode: Mode) -> Result<Vec<Function>, ManifestError> {
    // Pass 1: every document as a plain value, to find what each one is.
    let mut wanted = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = serde_yaml::Value::deserialize(doc).map_err(|e| yaml_error(origin, i, &e))?;
        wanted.push(select(&value, origin, i, mode)?);
    }

    // Pass 2: the wanted documents again, typed, straight from the text so that errors carry
    // the field path and the line.
    let mut functions: Vec<Function> = Vec::new();
    let mut first_doc: Vec<usize> = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        if !wanted.get(i).copied().unwrap_or(false) {
            continue;
        }
        let mut f = Function::deserialize(doc).map_err(|e| yaml_error(origin, i, &e))?;
        if f.metadata.namespace.as_deref().is_none_or(str::is_empty) {
            f.metadata.namespace = Some("default".to_string());
        }
        let name = f.metadata.name.clone().unwrap_or_default();
        if let Err(errors) = validate(&f) {
            return Err(ManifestError::Invalid {
                origin: origin.to_string(),
                name,
                errors,
            });
        }
        if let Some(j) = functions.iter().position(|g| {
            g.metadata.name == f.metadata.name && g.metadata.namespace == f.metadata.namespace
        }) {
            let ns = f.metadata.namespace.clone().unwrap_or_default();
            return Err(ManifestError::Invalid {
                origin: origin.to_string(),
                name: name.clone(),
                errors: FieldError::new(
                    "metadata.name",
                    format!(
                        "Function {name:?} in namespace {ns:?} is defined twice (documents {} and {})",
                        first_doc[j] + 1,
                        i + 1
                    ),
                )
                .into(),
            });
        }
        functions.push(f);
        first_doc.push(i);
    }
    Ok(functions)
}

/// Whether document `i` is a Function to parse; errors for documents that must not be there.
fn select(
    value: &serde_yaml::Value,
    origin: &str,
    i: usize,
    mode: Mode,
) -> Result<bool, ManifestError> {
    let str_field = |m: &serde_yaml::Mapping, key: &str| {
        m.get(key)
            .and_then(serde_yaml::Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let map = match value {
        serde_yaml::Value::Null => return Ok(false),
        serde_yaml::Value::Mapping(m) => m,
        _ if mode == Mode::Scan => return Ok(false),
        _ => {
            return Err(ManifestError::Yaml {
                origin: origin.to_string(),
                doc_index: i,
                message: "expected a mapping with apiVersion, kind, metadata and spec".into(),
            });
        }
    };
    let api_version = str_field(map, "apiVersion");
    let kind = str_field(map, "kind");
    let in_group = api_version
        .split_once('/')
        .map_or(api_version.as_str(), |(g, _)| g)
        == GROUP;
    if !in_group && mode == Mode::Scan {
        return Ok(false);
    }
    if in_group && kind == "FunctionRun" {
        return Ok(false);
    }
    if api_version != API_VERSION || kind != "Function" {
        return Err(ManifestError::WrongKind {
            origin: origin.to_string(),
            doc_index: i,
            api_version,
            kind,
        });
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "\
apiVersion: faas.dev/v1alpha1
kind: Function
metadata:
  name: hello
spec:
  runtime:
    wasm:
      source: hello.wasm
";

    fn function_yaml(name: &str) -> String {
        HELLO.replace("name: hello", &format!("name: {name}"))
    }

    #[test]
    fn parses_one_function_with_default_namespace() {
        let fns = parse_functions(HELLO, "hello.yaml").expect("valid");
        assert_eq!(fns.len(), 1);
        assert_eq!(fns[0].metadata.name.as_deref(), Some("hello"));
        assert_eq!(fns[0].metadata.namespace.as_deref(), Some("default"));
        assert_eq!(
            fns[0].spec.runtime.wasm.as_ref().map(|w| w.source.as_str()),
            Some("hello.wasm")
        );
    }

    #[test]
    fn parses_the_design_example() {
        let text = r#"
apiVersion: faas.dev/v1alpha1
kind: Function
metadata: {name: resize-images, namespace: catalog}
spec:
  runtime:
    wasm: {source: "oci://123456789012.dkr.ecr.eu-west-3.amazonaws.com/fn/resize:1.4"}
  timeout: 30s
  memory: 128Mi
  concurrency: 50
  scale: {min: 0, max: 20}
  env: {LOG_LEVEL: info}
  iam: {roleArn: "arn:aws:iam::123456789012:role/resize-images"}
  network: {allowedOutboundHosts: ["https://api.example.com"]}
  placement: {capacity: spot}
  http: {path: /resize, hosts: ["resize.fn.example.com"], public: true}
  schedules:
    - name: nightly
      cron: "0 3 * * *"
      timeZone: Europe/Paris
      concurrencyPolicy: Forbid
      startingDeadline: 5m
      retries: {limit: 2, backoff: 30s}
      payload: {"mode": "full", "nested": [1, {"a": null}]}
      suspend: false
  triggers:
    sqs:
      - queueUrl: https://sqs.eu-west-3.amazonaws.com/123456789012/images
        batchSize: 10
        batchWindow: 2s
        maxConcurrency: 5
        reportBatchItemFailures: true
"#;
        let fns = parse_functions(text, "design.yaml").expect("valid");
        let f = &fns[0];
        assert_eq!(f.metadata.namespace.as_deref(), Some("catalog"));
        assert_eq!(
            f.spec.schedules[0].concurrency_policy,
            crate::ConcurrencyPolicy::Forbid
        );
        assert_eq!(
            f.spec.schedules[0].payload,
            Some(serde_json::json!({"mode": "full", "nested": [1, {"a": null}]}))
        );
        assert!(f.spec.triggers.as_ref().expect("triggers").sqs[0].report_batch_item_failures);
        assert_eq!(f.spec.limits().expect("limits").concurrency, 50);
    }

    #[test]
    fn multi_document_skips_empty_and_function_runs() {
        let text = format!(
            "---\n# just a comment\n---\n{}---\n---\n{}\n---\napiVersion: faas.dev/v1alpha1\nkind: FunctionRun\nmetadata: {{name: r}}\nspec: {{function: a, schedule: manual, trigger: manual}}\n",
            function_yaml("a"),
            function_yaml("b")
        );
        let fns = parse_functions(&text, "multi.yaml").expect("valid");
        let names: Vec<_> = fns
            .iter()
            .filter_map(|f| f.metadata.name.as_deref())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert!(parse_functions("", "empty.yaml").expect("empty").is_empty());
        assert!(
            parse_functions("# nothing\n", "c.yaml")
                .expect("empty")
                .is_empty()
        );
    }

    #[test]
    fn unknown_field_names_the_path() {
        let text = HELLO.replace("source:", "sorce:");
        let e = parse_functions(&text, "typo.yaml").expect_err("typo");
        let ManifestError::Yaml {
            origin,
            doc_index,
            message,
        } = &e
        else {
            panic!("expected a Yaml error, got {e:?}");
        };
        assert_eq!(origin, "typo.yaml");
        assert_eq!(*doc_index, 0);
        assert!(
            message.starts_with("spec.runtime.wasm: unknown field \"sorce\""),
            "{message}"
        );
        assert!(message.contains("line 8"), "{message}");
        let shown = e.to_string();
        assert!(
            shown.starts_with("typo.yaml (document 1): spec.runtime.wasm: unknown field \"sorce\""),
            "{shown}"
        );

        let second = format!(
            "{HELLO}---\n{}",
            function_yaml("b").replace("  runtime:", "  runtim:")
        );
        match parse_functions(&second, "two.yaml") {
            Err(ManifestError::Yaml {
                doc_index, message, ..
            }) => {
                assert_eq!(doc_index, 1);
                assert!(
                    message.starts_with("spec: unknown field \"runtim\""),
                    "{message}"
                );
                assert!(message.contains("line 15"), "{message}");
            }
            other => panic!("expected a Yaml error, got {other:?}"),
        }
    }

    #[test]
    fn type_errors_and_syntax_errors() {
        let text = HELLO.replace(
            "source: hello.wasm",
            "source: hello.wasm\n  concurrency: lots",
        );
        match parse_functions(&text, "t.yaml") {
            Err(ManifestError::Yaml { message, .. }) => {
                assert!(
                    message.starts_with("spec.concurrency: invalid type"),
                    "{message}"
                )
            }
            other => panic!("expected a Yaml error, got {other:?}"),
        }
        let text = HELLO.replace("source: hello.wasm", "source: [unclosed");
        match parse_functions(&text, "s.yaml") {
            Err(ManifestError::Yaml { message, .. }) => {
                assert!(message.contains("line"), "{message}")
            }
            other => panic!("expected a Yaml error, got {other:?}"),
        }
        match parse_functions("just a string", "x.yaml") {
            Err(ManifestError::Yaml { message, .. }) => assert!(message.contains("mapping")),
            other => panic!("expected a Yaml error, got {other:?}"),
        }
        match parse_functions(
            &HELLO.replace(
                "spec:\n  runtime:\n    wasm:\n      source: hello.wasm\n",
                "",
            ),
            "m.yaml",
        ) {
            Err(ManifestError::Yaml { message, .. }) => {
                assert!(message.contains("missing field \"spec\""), "{message}")
            }
            other => panic!("expected a Yaml error, got {other:?}"),
        }
    }

    #[test]
    fn wrong_api_version_or_kind() {
        let cases = [
            (
                HELLO.replace("kind: Function", "kind: Funktion"),
                "faas.dev/v1alpha1",
                "Funktion",
            ),
            (
                HELLO.replace("faas.dev/v1alpha1", "faas.dev/v2"),
                "faas.dev/v2",
                "Function",
            ),
            (
                HELLO
                    .replace("faas.dev/v1alpha1", "apps/v1")
                    .replace("Function", "Deployment"),
                "apps/v1",
                "Deployment",
            ),
            (
                HELLO.replace("apiVersion: faas.dev/v1alpha1\n", ""),
                "",
                "Function",
            ),
        ];
        for (text, av, k) in cases {
            match parse_functions(&text, "w.yaml") {
                Err(ManifestError::WrongKind {
                    origin,
                    doc_index,
                    api_version,
                    kind,
                }) => {
                    assert_eq!((origin.as_str(), doc_index), ("w.yaml", 0));
                    assert_eq!((api_version.as_str(), kind.as_str()), (av, k));
                }
                other => panic!("expected WrongKind, got {other:?}"),
            }
        }
        let e = parse_functions(&cases_display(), "w.yaml").expect_err("wrong");
        assert_eq!(
            e.to_string(),
            "w.yaml (document 2): expected apiVersion \"faas.dev/v1alpha1\" and kind \"Function\", got apiVersion \"v1\" and kind \"ConfigMap\""
        );
    }

    fn cases_display() -> String {
        format!("{HELLO}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x}}\n")
    }

    #[test]
    fn invalid_function_reports_all_errors() {
        let text = function_yaml("Bad_Name").replace(
            "source: hello.wasm",
            "source: hello.wasm\n  timeout: 30x\n  schedules:\n    - {name: a, cron: \"61 * * * *\"}",
        );
        match parse_functions(&text, "bad.yaml") {
            Err(ManifestError::Invalid {
                origin,
                name,
                errors,
            }) => {
                assert_eq!(origin, "bad.yaml");
                assert_eq!(name, "Bad_Name");
                let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
                assert_eq!(
                    paths,
                    ["metadata.name", "spec.timeout", "spec.schedules[0].cron"]
                );
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
        let dup = format!("{}---\n{}", function_yaml("a"), function_yaml("a"));
        let e = parse_functions(&dup, "dup.yaml").expect_err("duplicate");
        assert!(
            e.to_string().contains("defined twice (documents 1 and 2)"),
            "{e}"
        );
        let other_ns = format!(
            "{}---\n{}",
            function_yaml("a"),
            function_yaml("a").replace("name: a", "name: a\n  namespace: other")
        );
        assert_eq!(
            parse_functions(&other_ns, "ns.yaml").expect("valid").len(),
            2
        );
    }

    fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn load_file_and_missing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(dir.path(), "hello.yaml", HELLO);
        assert_eq!(load_file(&p).expect("valid").len(), 1);
        let missing = dir.path().join("nope.yaml");
        assert!(matches!(load_file(&missing), Err(ManifestError::Io { .. })));
        let loaded = load_path(&missing);
        assert_eq!(loaded.len(), 1);
        assert!(matches!(loaded[0].result, Err(ManifestError::Io { .. })));
        let e = load_file(&missing).expect_err("missing");
        assert!(e.to_string().starts_with(&missing.display().to_string()));
    }

    #[test]
    fn load_path_on_a_file_is_strict() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(
            dir.path(),
            "mixed.yaml",
            &format!("{HELLO}---\napiVersion: v1\nkind: ConfigMap\n"),
        );
        let loaded = load_path(&p);
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].path, p);
        assert!(matches!(
            loaded[0].result,
            Err(ManifestError::WrongKind { .. })
        ));
    }

    #[test]
    fn a_listing_names_every_walked_directory_and_none_it_skips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, "a/b/f.yaml", &function_yaml("f"));
        write(root, "empty/readme.md", "no manifest here\n");
        write(root, ".state/runs.yaml", &function_yaml("hidden"));
        write(root, "target/debug/t.yaml", &function_yaml("target"));
        write(root, "node_modules/x/n.yaml", &function_yaml("node"));
        let listing = list_manifest_files(root);
        let mut dirs: Vec<_> = listing
            .dirs
            .iter()
            .map(|d| d.strip_prefix(root).expect("under root").to_path_buf())
            .collect();
        assert_eq!(dirs.first(), Some(&PathBuf::new()), "the root comes first");
        dirs.sort();
        let expected: Vec<PathBuf> = ["", "a", "a/b", "empty"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(dirs, expected);
        assert_eq!(listing.files, vec![root.join("a/b/f.yaml")]);
        assert!(listing.errors.is_empty());
        for name in [".git", ".f.yaml.tmp", "target", "node_modules"] {
            assert!(is_skipped(name), "{name}");
        }
        for name in ["hello.yaml", "targets", "src"] {
            assert!(!is_skipped(name), "{name}");
        }
        for name in ["a.yaml", "b.YML", "dir/c.yml"] {
            assert!(has_manifest_extension(Path::new(name)), "{name}");
        }
        for name in ["a.json", "yaml", "app.log", "a.yaml.tmp"] {
            assert!(!has_manifest_extension(Path::new(name)), "{name}");
        }
    }

    #[test]
    fn load_path_scans_a_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, "b/hello.yaml", &function_yaml("hello"));
        write(
            root,
            "a/two.yml",
            &format!("{}---\n{}", function_yaml("one"), function_yaml("two")),
        );
        // Other tools' YAML is ignored, even mixed with a Function.
        write(
            root,
            "c/mixed.yaml",
            &format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: x}}\nspec: {{replicas: 1}}\n---\n{}",
                function_yaml("mixed")
            ),
        );
        write(
            root,
            "deploy.yaml",
            "apiVersion: v1\nkind: ConfigMap\ndata: {a: b}\n",
        );
        write(root, "workflow.yml", "on: push\njobs: {}\n");
        write(root, "template.yaml", "{{ .Values.broken\n");
        write(
            root,
            "runs.yaml",
            "apiVersion: faas.dev/v1alpha1\nkind: FunctionRun\nmetadata: {name: r}\nspec: {function: a, schedule: manual, trigger: manual}\n",
        );
        // Broken files are reported, each on its own.
        write(root, "d/broken.yaml", &HELLO.replace("source:", "sorce:"));
        write(root, "d/invalid.yaml", &function_yaml("Nope"));
        write(
            root,
            "d/wrongkind.yaml",
            &HELLO.replace("kind: Function", "kind: Widget"),
        );
        write(
            root,
            "d/syntax.yaml",
            "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: [\n",
        );
        // Skipped places and names.
        write(root, ".hidden/h.yaml", &function_yaml("hidden"));
        write(root, "target/t.yaml", &function_yaml("target"));
        write(root, "node_modules/n.yaml", &function_yaml("node"));
        write(root, "e/.swap.yaml", &function_yaml("swap"));
        write(root, "e/readme.md", &function_yaml("md"));
        write(root, "e/upper.YAML", &function_yaml("upper"));

        let loaded = load_path(root);
        let rel: Vec<String> = loaded
            .iter()
            .map(|l| {
                l.path
                    .strip_prefix(root)
                    .expect("under root")
                    .to_string_lossy()
                    .replace('\\', "/")
            })
            .collect();
        assert_eq!(
            rel,
            [
                "a/two.yml",
                "b/hello.yaml",
                "c/mixed.yaml",
                "d/broken.yaml",
                "d/invalid.yaml",
                "d/syntax.yaml",
                "d/wrongkind.yaml",
                "e/upper.YAML"
            ]
        );
        let names = |i: usize| -> Vec<String> {
            loaded[i]
                .result
                .as_ref()
                .expect("ok")
                .iter()
                .filter_map(|f| f.metadata.name.clone())
                .collect()
        };
        assert_eq!(names(0), ["one", "two"]);
        assert_eq!(names(1), ["hello"]);
        assert_eq!(names(2), ["mixed"]);
        assert!(matches!(loaded[3].result, Err(ManifestError::Yaml { .. })));
        assert!(matches!(
            loaded[4].result,
            Err(ManifestError::Invalid { .. })
        ));
        assert!(matches!(loaded[5].result, Err(ManifestError::Yaml { .. })));
        assert!(matches!(
            loaded[6].result,
            Err(ManifestError::WrongKind { .. })
        ));
        assert_eq!(names(7), ["upper"]);
    }

    #[test]
    fn empty_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(load_path(dir.path()).is_empty());
    }
}
