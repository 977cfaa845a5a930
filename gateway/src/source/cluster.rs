//! The cluster gateway's sources: `Function` resources (each becomes a registry entry
//! forwarding to its pods, through [`ClusterFunctions`] and [`Platform::register`]) and
//! EndpointSlices (where those pods are). One watch of each per namespace scope; the
//! platform turns ready once the first list of every watch is in.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use faas_api::Function;
use futures::StreamExt as _;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};

use crate::cluster::MANAGED_BY_SELECTOR;
use crate::cluster::endpoints::Endpoints;
use crate::cluster::functions::ClusterFunctions;
use crate::platform::Platform;

/// One initial list done; the platform is ready when all are.
fn initial_list_done(platform: &Platform, pending: &AtomicUsize) {
    if pending.fetch_sub(1, Ordering::AcqRel) == 1 {
        let (ready, failed) = platform.registry.counts();
        tracing::info!(
            ready,
            failed,
            "cluster gateway: functions and endpoints listed"
        );
        platform.set_ready();
    }
}

pub(crate) async fn follow_functions(
    platform: Weak<Platform>,
    functions: Arc<Mutex<ClusterFunctions>>,
    api: Api<Function>,
    scope: Option<String>,
    pending: Arc<AtomicUsize>,
) {
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    let mut listed = false;
    while let Some(event) = stream.next().await {
        let Some(platform) = platform.upgrade() else {
            return;
        };
        let mut functions = functions.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            Ok(Event::Init) => functions.relist_started(scope.as_deref()),
            Ok(Event::InitApply(f) | Event::Apply(f)) => functions.apply(&platform, f),
            Ok(Event::InitDone) => {
                functions.relist_done(&platform, scope.as_deref());
                if !listed {
                    listed = true;
                    initial_list_done(&platform, &pending);
                }
            }
            Ok(Event::Delete(f)) => functions.delete(&platform, &f),
            Err(e) => tracing::warn!(error = %e, "watching Functions failed; retrying"),
        }
    }
}

pub(crate) async fn follow_slices(
    platform: Weak<Platform>,
    endpoints: Arc<Endpoints>,
    api: Api<EndpointSlice>,
    scope: Option<String>,
    pending: Arc<AtomicUsize>,
) {
    let config = watcher::Config::default().labels(MANAGED_BY_SELECTOR);
    let stream = watcher::watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    let mut listed = false;
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => endpoints.relist_started(scope.as_deref()),
            Ok(Event::InitApply(s) | Event::Apply(s)) => endpoints.apply(&s),
            Ok(Event::InitDone) => {
                endpoints.relist_done(scope.as_deref());
                if !listed {
                    listed = true;
                    let Some(platform) = platform.upgrade() else {
                        return;
                    };
                    initial_list_done(&platform, &pending);
                }
            }
            Ok(Event::Delete(s)) => endpoints.delete(&s),
            Err(e) => tracing::warn!(error = %e, "watching EndpointSlices failed; retrying"),
        }
    }
}
