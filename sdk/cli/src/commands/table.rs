//! How commands print: tables whose every column is as wide as its widest cell, and a raw
//! document as JSON or YAML.

use crate::args::Output;
use crate::stdout::{out, outln};

/// A column: its title and whether its cells are right-aligned (numbers, durations).
pub struct Column {
    pub title: &'static str,
    pub right: bool,
}

/// A left-aligned column.
pub const fn left(title: &'static str) -> Column {
    Column {
        title,
        right: false,
    }
}

/// A right-aligned column.
pub const fn right(title: &'static str) -> Column {
    Column { title, right: true }
}

/// The table as text: a header line, then one line per row, each line starting with
/// `indent`. Every column is as wide as its widest cell (title included), one space apart;
/// the last column is not padded. A row shorter than the header leaves the rest empty.
pub fn render(indent: &str, columns: &[Column], rows: &[Vec<String>]) -> String {
    fn cell(row: &[String], i: usize) -> &str {
        row.get(i).map(String::as_str).unwrap_or("")
    }
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            rows.iter()
                .map(|row| cell(row, i).chars().count())
                .chain([column.title.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let titles: Vec<String> = columns.iter().map(|c| c.title.to_owned()).collect();
    for row in std::iter::once(&titles).chain(rows) {
        let mut line = indent.to_owned();
        for (i, column) in columns.iter().enumerate() {
            let text = cell(row, i);
            let pad = widths[i].saturating_sub(text.chars().count());
            let last = i + 1 == columns.len();
            if i > 0 {
                line.push(' ');
            }
            if column.right {
                line.push_str(&" ".repeat(pad));
                line.push_str(text);
            } else {
                line.push_str(text);
                if !last {
                    line.push_str(&" ".repeat(pad));
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A raw document as `-o json` (also for a table request) or `-o yaml` prints it.
pub fn print_value(value: &serde_json::Value, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json | Output::Table => outln!("{}", serde_json::to_string_pretty(value)?),
        Output::Yaml => out!("{}", serde_yaml::to_string(value)?),
    }
}

/// `value`, or `-` when there is none.
pub fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_is_as_wide_as_its_widest_cell() {
        let rows = vec![
            vec![
                "a".to_owned(),
                "process-http".to_owned(),
                "1s".to_owned(),
                "x".to_owned(),
            ],
            vec![
                "long-name".to_owned(),
                "wasm".to_owned(),
                "10.5s".to_owned(),
                "y".to_owned(),
            ],
        ];
        let text = render(
            "  ",
            &[left("NAME"), left("KIND"), right("TIME"), left("LAST")],
            &rows,
        );
        assert_eq!(
            text,
            "  NAME      KIND          TIME LAST\n  \
               a         process-http    1s x\n  \
               long-name wasm         10.5s y\n"
        );
    }
}
