//! `faas list`: every function, one row each, the same columns whichever platform answers
//! (`-q`: the names alone, for scripts and shell completion).

use super::table::{Column, left, or_dash, print_value, render};
use crate::args::Output;
use crate::backend::{Backend, FunctionRow};
use crate::stdout::{out, outln};

const COLUMNS: [Column; 9] = [
    left("NAME"),
    left("STATE"),
    left("KIND"),
    left("REPLICAS"),
    left("TIMEOUT"),
    left("MEMORY"),
    left("SHA256"),
    left("URL"),
    left("REASON"),
];

pub async fn run(backend: &dyn Backend, output: Output, quiet: bool) -> anyhow::Result<()> {
    let listed = backend.list().await?;
    if quiet {
        return listed
            .value
            .iter()
            .try_for_each(|row| outln!("{}", row.name));
    }
    if output != Output::Table {
        return print_value(&listed.raw, output);
    }
    if listed.value.is_empty() {
        eprintln!("no functions{}", backend.scope());
        return Ok(());
    }
    out!("{}", table(&listed.value))
}

/// The table of `rows`.
pub fn table(rows: &[FunctionRow]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            vec![
                row.name.clone(),
                row.state.clone(),
                or_dash(row.kind.as_deref()),
                or_dash(row.replicas.as_deref()),
                or_dash(row.timeout.as_deref()),
                or_dash(row.memory.as_deref()),
                or_dash(row.sha256.as_deref()),
                or_dash(row.url.as_deref()),
                // Reasons can be compiler output: one line in a table.
                row.reason
                    .as_deref()
                    .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    render("", &COLUMNS, &cells)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_process_http_kind_fits_its_column() {
        let rows = [
            FunctionRow {
                name: "web".into(),
                state: "Ready".into(),
                kind: Some("process-http".into()),
                url: Some("http://127.0.0.1:8080/function/web".into()),
                ..Default::default()
            },
            FunctionRow {
                name: "a-much-longer-function-name-than-24".into(),
                state: "NotReady".into(),
                kind: Some("component".into()),
                reason: Some("cannot compile:\n  line 1".into()),
                ..Default::default()
            },
        ];
        let text = table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        let kind_at = lines[0].find("KIND").unwrap();
        let next_at = lines[0].find("REPLICAS").unwrap();
        assert_eq!(&lines[1][kind_at..next_at], "process-http ");
        assert_eq!(&lines[2][kind_at..next_at], "component    ");
        assert!(lines[2].starts_with("a-much-longer-function-name-than-24 NotReady "));
        assert!(lines[2].ends_with("cannot compile: line 1"), "{text}");
        // Every row's columns line up under the header.
        let url_at = lines[0].find("URL").unwrap();
        assert_eq!(&lines[1][url_at..], "http://127.0.0.1:8080/function/web");
    }
}
