//! The kube-proxy stand-in: each Service port gets a listener on the Service's stand-in
//! cluster IP (a loopback address), and each connection is forwarded to one ready endpoint of
//! the Service, in turn. Only what pods reach by Service name goes through here (the
//! controller's calls to the gateway's admin listener); the gateway itself reads
//! EndpointSlices and calls pods directly, as it does in a cluster.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};

/// Ready backends per (service key `name.namespace`, service port).
pub type Backends = Arc<Mutex<BTreeMap<(String, u16), Vec<SocketAddr>>>>;

/// The listeners of the Service ports seen so far.
#[derive(Default)]
pub struct Proxy {
    pub backends: Backends,
    listening: BTreeMap<(String, u16), tokio::task::JoinHandle<()>>,
}

impl Proxy {
    /// Makes sure `service:port` is served on `ip:port`.
    pub async fn ensure(&mut self, service: &str, ip: &str, port: u16) {
        let key = (service.to_owned(), port);
        if self.listening.contains_key(&key) {
            return;
        }
        let listener = match TcpListener::bind((ip, port)).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(service, ip, port, error = %e, "the proxy stand-in cannot listen");
                return;
            }
        };
        let backends = Arc::clone(&self.backends);
        let turn = Arc::new(AtomicUsize::new(0));
        let task_key = key.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let choice = {
                    let map = backends.lock().unwrap_or_else(|e| e.into_inner());
                    map.get(&task_key)
                        .filter(|b| !b.is_empty())
                        .map(|b| b[turn.fetch_add(1, Ordering::Relaxed) % b.len()])
                };
                // No ready endpoint: the connection is refused, as kube-proxy's REJECT does.
                let Some(backend) = choice else { continue };
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(backend).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        self.listening.insert(key, task);
    }

    /// Forgets a Service that is gone.
    pub fn forget(&mut self, service: &str) {
        self.listening.retain(|(name, _), task| {
            let keep = name != service;
            if !keep {
                task.abort();
            }
            keep
        });
        let mut map = self.backends.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|(name, _), _| name != service);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        for task in self.listening.values() {
            task.abort();
        }
    }
}
