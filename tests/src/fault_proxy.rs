//! A TCP proxy on loopback in front of a real server on loopback, whose fault a test switches
//! at will: pass everything, answer every request `503 Service Unavailable` or `400
//! ThrottlingException`, or refuse
//! (accept and close at once). Switching closes the connections it holds, so a client's
//! pooled keep-alive connections meet the new fault at their next request instead of
//! passing by it.
//!
//! It only ever connects to the loopback address it was given: it cannot leak traffic.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forwards both ways.
    Pass,
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
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                tokio::spawn(serve(inbound, upstream, watching.clone()));
            }
        });
        FaultProxy {
            endpoint,
            fault,
            task,
        }
    }

    /// Switches to `fault`, closing every connection held now.
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }
}

async fn serve(mut inbound: TcpStream, upstream: SocketAddr, mut fault: watch::Receiver<Fault>) {
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
        Fault::Pass => {
            let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                return;
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                _ = fault.changed() => {}
            }
        }
    }
}
