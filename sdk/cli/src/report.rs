//! How the CLI puts an error in front of the user: one line, each cause once.
//!
//! Many errors of the workspace say their cause in their own message *and* return it as their
//! `source()` (a file error names the OS error, a validation error lists the fields), so
//! printing the chain as is (`{:#}`) says everything twice. Every error the CLI prints goes
//! through [`one_line`], the one place that decides what a printed error looks like.

/// `err` and its causes joined by `: `, leaving out a cause whose text the line already holds.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        let text = text.trim();
        if text.is_empty() || line.contains(text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Like many of the workspace's errors: the cause in the message and as `source()`.
    #[derive(Debug)]
    struct SaysItsCause {
        path: &'static str,
        source: std::io::Error,
    }

    impl std::fmt::Display for SaysItsCause {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}: {}", self.path, self.source)
        }
    }

    impl std::error::Error for SaysItsCause {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn a_cause_the_message_already_says_is_not_repeated() {
        let err = anyhow::Error::new(SaysItsCause {
            path: "bad.yaml",
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "No such file"),
        });
        assert_eq!(one_line(&err), "bad.yaml: No such file");
        // Context the message does not hold is kept, outermost first.
        let err = err.context("reading the manifest");
        assert_eq!(
            one_line(&err),
            "reading the manifest: bad.yaml: No such file"
        );
    }

    #[test]
    fn causes_that_are_not_in_the_message_are_all_printed() {
        let err = anyhow::anyhow!("connection refused").context("calling the gateway");
        assert_eq!(one_line(&err), "calling the gateway: connection refused");
    }
}
