//! The one shutdown sequence of every gateway process (`faas up`, a runtime pool pod, a
//! sidecar, the cluster gateway): on SIGTERM or SIGINT `/readyz` fails at once, traffic is
//! still served for the drain delay (a load balancer's deregistration delay), then the
//! listeners close, and requests, runs and SQS batches in flight get the grace period.
//!
//! It is one module so that a host cannot get the order wrong: a listener closed before the
//! load balancer stopped sending turns requests into 502s, and an event source stopped
//! without the grace period loses work it had taken.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::net::TcpListener;

use crate::error::StartError;
use crate::platform::Platform;
use crate::server::Exposure;

/// How one background service (scheduler, SQS pollers, async worker) stops: given the grace
/// period, it finishes what it has in flight within it.
pub type Stop = Box<dyn FnOnce(Duration) -> BoxFuture<'static, ()> + Send>;

/// A [`Stop`] from an async closure.
pub fn stop_with<F, Fut>(stop: F) -> Stop
where
    F: FnOnce(Duration) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Box::new(move |grace| Box::pin(stop(grace)))
}

/// The shutdown settings of one process.
#[derive(Clone, Copy, Debug)]
pub struct Lifecycle {
    /// After the signal, how long traffic is still served while `/readyz` fails.
    pub drain_delay: Duration,
    /// Tell the person at the terminal what happens (local processes), and let a second
    /// signal exit at once (exit code 130).
    pub announce: bool,
}

impl Lifecycle {
    /// Serves `listeners` until SIGTERM/SIGINT, then drains and stops `services`; the grace
    /// period is `platform.config.shutdown_grace`. Whatever ends the listeners (a signal or
    /// an error) stops the services too.
    pub async fn run(
        self,
        platform: &Arc<Platform>,
        listeners: Vec<(TcpListener, Exposure)>,
        services: Vec<Stop>,
    ) -> Result<(), StartError> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let stop = Arc::new(stop);
        let grace = platform.config.shutdown_grace;
        let signalled = Arc::clone(&stop);
        let draining = Arc::clone(platform);
        let drain_delay = self.drain_delay;
        let announce = self.announce;
        let on_signal = tokio::spawn(async move {
            shutdown_signal().await;
            drain(&draining, drain_delay).await;
            signalled.send_replace(true);
            if announce {
                eprintln!(
                    "faas: stopping; requests, runs and SQS batches in flight get up to {} \
                     (signal again to exit now)",
                    humantime::format_duration(grace)
                );
                // A second signal is someone who does not want to wait: exit at once. SQS
                // messages in flight then come back after their visibility timeout, runs stay
                // Running until the next start marks them Interrupted.
                tokio::spawn(async {
                    shutdown_signal().await;
                    eprintln!("faas: second signal, exiting now");
                    std::process::exit(130);
                });
            }
        });
        let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let serving =
            futures::future::join_all(listeners.into_iter().map(|(listener, exposure)| {
                crate::server::serve_exposed(
                    listener,
                    Arc::clone(platform),
                    exposure,
                    until_stopped(stopped.clone()),
                )
            }));
        let services_stopped = until_stopped(stopped);
        let (served, ()) = tokio::join!(
            async {
                let served = serving.await;
                stop.send_replace(true);
                served
            },
            async move {
                services_stopped.await;
                futures::future::join_all(services.into_iter().map(|stop| stop(grace))).await;
            }
        );
        on_signal.abort();
        served
            .into_iter()
            .collect::<Result<Vec<()>, _>>()
            .map_err(StartError::Serve)?;
        Ok(())
    }
}

/// The first half of a drain behind a load balancer: `/readyz` fails at once, so the load
/// balancer stops choosing this pod, while requests keep being served for `delay` (the load
/// balancer's deregistration delay: until it is over, it may still send requests, and a
/// closed listener would turn them into 502s). Then the caller closes its listeners and
/// requests in flight get the grace period. A second signal ends the delay early.
pub async fn drain(platform: &Platform, delay: Duration) {
    platform.set_draining();
    if delay.is_zero() {
        return;
    }
    tracing::info!(delay = ?delay, "draining: /readyz fails; still serving until the load balancer stops sending");
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        () = shutdown_signal() => tracing::warn!("second signal: closing the listeners now"),
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        }
        _ => {
            tracing::warn!("cannot install signal handlers; falling back to ctrl-c");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
