//! A TCP proxy on loopback in front of a real server on loopback, whose fault a test switches
//! at will: pass everything, pass it slowly, answer every request `503 Service Unavailable` or
//! `400 ThrottlingException`, or refuse (accept and close at once). Switching closes the connections it holds, so a client's
//! pooled keep-alive connections meet the new fault at their next request instead of
//! passing by it.
//!
//! It only ever connects to the loopback address it was given: it cannot leak traffic.
//!
//! What clients send through it is kept ([`FaultProxy::requests`]), so a test can tell who
//! signed each request (the access key in its SigV4 `Authorization` header).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forwards both ways.
    Pass,
    /// Forwards both ways, holding every chunk a client sends for this long first: each
    /// request reaches the server that much later (a slow endpoint, a congested network).
    Slow(Duration),
    /// Reads the request head and answers 503 with an AWS JSON error body, then closes.
    ServiceUnavailable,
    /// Reads the request head and answers 400 `ThrottlingException`, as SQS does when a
    /// caller exceeds its request rate, then closes.
    Throttle,
    /// Closes the connection at once (an endpoint that is down).
    Refuse,
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    fault: watch::Sender<Fault>,
    /// Bytes clients sent upstream, one buffer per connection.
    sent: Tap,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// A proxy in front of `upstream` (`http://127.0.0.1:PORT`), passing everything.
    pub async fn start(upstream: &str) -> FaultProxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("an upstream address (ip:port)");
        assert!(
            upstream.ip().is_loopback(),
            "the fault proxy forwards to loopback only"
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("an address"));
        let (fault, watching) = watch::channel(Fault::Pass);
        let sent = Tap::default();
        let tap = sent.clone();
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                tokio::spawn(serve(inbound, upstream, watching.clone(), tap.clone()));
            }
        });
        FaultProxy {
            endpoint,
            fault,
            sent,
            task,
        }
    }

    /// Every request passed upstream so far (head and body, as text), each with the access
    /// key that signed it (SigV4 `Credential=<key>/...`), if any.
    pub fn requests(&self) -> Vec<(Option<String>, String)> {
        let connections = self.sent.0.lock().expect("not poisoned").clone();
        let mut out = Vec::new();
        for bytes in connections {
            // Requests follow one another on a connection: a head, then content-length bytes.
            let mut rest = &bytes[..];
            while let Some(head_end) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
                let length = head
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                let end = (head_end + 4 + length).min(rest.len());
                let request = String::from_utf8_lossy(&rest[..end]).into_owned();
                let key = head
                    .split("Credential=")
                    .nth(1)
                    .and_then(|r| r.split('/').next())
                    .map(str::to_owned);
                out.push((key, request));
                rest = &rest[end..];
            }
        }
        out
    }

    /// Switches to `fault`, closing every connection held now.
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }
}

/// What passed upstream: one buffer per connection, each kept up to [`TAP_LIMIT`].
#[derive(Clone, Default)]
struct Tap(Arc<Mutex<Vec<Vec<u8>>>>);

const TAP_LIMIT: usize = 4 << 20;

async fn serve(
    mut inbound: TcpStream,
    upstream: SocketAddr,
    mut fault: watch::Receiver<Fault>,
    tap: Tap,
) {
    let now = *fault.borrow_and_update();
    match now {
        Fault::Refuse => {}
        Fault::ServiceUnavailable | Fault::Throttle => {
            // The request head (bounded), then the error; the body is not waited for.
            let mut head = Vec::new();
            let mut buf = [0_u8; 4096];
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65_536 {
                    match inbound.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
            });
            let _ = read.await;
            let (status, body) = match now {
                Fault::Throttle => (
                    "400 Bad Request",
                    r#"{"__type":"com.amazonaws.sqs#ThrottlingException","message":"Rate exceeded (fault injected by the test)"}"#,
                ),
                _ => (
                    "503 Service Unavailable",
                    r#"{"__type":"ServiceUnavailable","message":"fault injected by the test"}"#,
                ),
            };
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.0\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = inbound.write_all(answer.as_bytes()).await;
            let _ = inbound.shutdown().await;
        }
        Fault::Pass | Fault::Slow(_) => {
            let delay = match now {
                Fault::Slow(delay) => delay,
                _ => Duration::ZERO,
            };
            let Ok(outbound) = TcpStream::connect(upstream).await else {
                return;
            };
            let connection = {
                let mut all = tap.0.lock().expect("not poisoned");
                all.push(Vec::new());
                all.len() - 1
            };
            let (mut from_client, mut to_client) = inbound.into_split();
            let (mut from_server, mut to_server) = outbound.into_split();
            let up = async {
                let mut buf = [0_u8; 16 * 1024];
                loop {
                    let n = match from_client.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    {
                        let mut all = tap.0.lock().expect("not poisoned");
                        let kept = &mut all[connection];
                        let room = TAP_LIMIT.saturating_sub(kept.len()).min(n);
                        kept.extend_from_slice(&buf[..room]);
                    }
                    if to_server.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = to_server.shutdown().await;
            };
            let down = async {
                let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                let _ = to_client.shutdown().await;
            };
            tokio::select! {
                _ = async { tokio::join!(up, down) } => {}
                _ = fault.changed() => {}
            }
        }
    }
}
