//! CGI echo for the WASI preview1 "command" ABI (WAGI style, RFC 3875).
//!
//! The platform passes the request in CGI environment variables and the body on stdin; the
//! response (CGI headers, a blank line, the body) goes to stdout. No dependencies: it builds for
//! `wasm32-wasip1` as a core module with just std.

use std::io::{self, Read, Write};

fn var(name: &str) -> String {
    std::env::var_os(name)
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn main() -> io::Result<()> {
    let mut body = Vec::new();
    io::stdin().read_to_end(&mut body)?;

    let method = var("REQUEST_METHOD");
    let mut out = Vec::with_capacity(256 + body.len());
    write!(
        out,
        "Content-Type: text/plain\nStatus: 200 OK\nX-Echo-Method: {method}\n\n"
    )?;
    for (key, name) in [
        ("method", "REQUEST_METHOD"),
        ("path_info", "PATH_INFO"),
        ("query", "QUERY_STRING"),
        ("content_type", "CONTENT_TYPE"),
        ("content_length", "CONTENT_LENGTH"),
        ("x_test", "HTTP_X_TEST"),
    ] {
        writeln!(out, "{key}={}", var(name))?;
    }
    out.extend_from_slice(b"body=");
    out.extend_from_slice(&body);

    let mut stdout = io::stdout().lock();
    stdout.write_all(&out)?;
    stdout.flush()
}
