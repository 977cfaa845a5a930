//! SQS throughput: messages per second through a poller and a real wasm function, against a
//! bare receive/delete loop on the same SQS-protocol server (moto on loopback) in the same run.
//!
//! `cargo bench -p faas-runtime --bench sqs [-- --messages N --rounds R]` preloads a fresh queue
//! with N messages (default 500) for each run of each line and drains it, R rounds (default 3)
//! with the lines interleaved; it prints the median messages/s of each line, its ratio to the
//! baseline, and the CPU this process used per message (poller, SDK, wasm; moto excluded):
//!
//! - `baseline`: one loop doing ReceiveMessage (10, long poll) then DeleteMessageBatch, no
//!   function: the most a single consumer of this server can do;
//! - `poller c=1 + hello`: the poller with `maxConcurrency: 1` (one batch at a time, like the
//!   baseline) calling the `hello` component once per batch through the wasm executor;
//! - `poller c=5 + hello`: the default `maxConcurrency` (deletes overlap the next receive);
//! - `poller c=5 + sqs-consumer`: the example consumer, which parses the event and answers a
//!   partial batch response.
//!
//! moto is the bottleneck (its ReceiveMessage scans the whole queue: ~0.4 ms per queued
//! message here, so queues are kept short), which is what the ratio asks: how much of what
//! the server can give the poller leaves on the table. The CPU column is our own cost.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, SendMessageBatchRequestEntry};
use bytes::Bytes;
use faas_api::Limits;
use faas_api::network::OutboundPolicy;
use faas_api::sqs::QueueUrl;
use faas_e2e::moto::{Moto, moto};
use faas_runtime::target::FunctionTarget;
use faas_runtime::wasm::{FunctionSettings, WasmConfig, WasmFunction, WasmRuntime};
use faas_runtime::{CallContext, Invoker, ResponseBody, full_body};
use faas_sqs::{Clients, Poller, SqsMetrics, TriggerConfig};
use http::{Request, Response};

#[path = "../tests/support/guest.rs"]
mod support;

/// A wasm function as the poller's target: the executor, without the gateway around it.
struct Wasm(WasmFunction);

impl FunctionTarget for Wasm {
    fn call(
        &self,
        _function: &str,
        request: Request<Bytes>,
        ctx: CallContext,
    ) -> Pin<Box<dyn Future<Output = Response<ResponseBody>> + Send + '_>> {
        Box::pin(async move {
            match self.0.invoke(ctx, request).await {
                Ok(response) => response,
                Err(err) => {
                    let mut response = Response::new(full_body(err.to_string()));
                    *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                    response
                }
            }
        })
    }
}

async fn load(runtime: &Arc<WasmRuntime>, name: &str) -> WasmFunction {
    let path = support::guest_path(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (run examples/build.sh)",
            path.display()
        )
    });
    let module = runtime
        .load(Bytes::from(bytes), None)
        .await
        .unwrap_or_else(|e| panic!("{name} does not load: {e}"));
    runtime.function(
        module,
        FunctionSettings {
            name: name.into(),
            limits: Limits::default(),
            env: vec![],
            outbound: Arc::new(OutboundPolicy::deny_all()),
            dirs: vec![],
            invocation_env: vec![],
        },
    )
}

/// A fresh queue holding `n` messages.
async fn preload(moto: &Moto, label: &str, n: usize) -> String {
    let name = format!("bench-{label}-{}", std::process::id());
    let url = moto.create_queue(&name, &[]).await;
    let client = moto.client();
    let mut sends = tokio::task::JoinSet::new();
    for chunk in 0..n.div_ceil(10) {
        let client = client.clone();
        let url = url.clone();
        let size = (n - chunk * 10).min(10);
        sends.spawn(async move {
            let entries = (0..size)
                .map(|i| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(format!("job {chunk}-{i}"))
                        .build()
                        .expect("entry")
                })
                .collect();
            client
                .send_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .expect("send batch");
        });
        // Bounded parallelism: moto is single-process.
        if sends.len() >= 8 {
            sends.join_next().await;
        }
    }
    while sends.join_next().await.is_some() {}
    url
}

/// Receive + delete until `n` messages are gone; messages per second.
async fn bare_loop(moto: &Moto, url: &str, n: usize) -> f64 {
    let client = moto.client();
    let started = Instant::now();
    let mut deleted = 0;
    while deleted < n {
        let out = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(20)
            .send()
            .await
            .expect("receive");
        let entries: Vec<_> = out
            .messages()
            .iter()
            .enumerate()
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()
                    .expect("entry")
            })
            .collect();
        if entries.is_empty() {
            continue;
        }
        let out = client
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .expect("delete");
        deleted += out.successful().len();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// A poller draining `n` messages into `target`; messages per second.
async fn through_poller(
    moto: &Moto,
    url: &str,
    n: usize,
    max_concurrency: usize,
    target: Arc<dyn FunctionTarget>,
    report_batch_item_failures: bool,
) -> f64 {
    let config = TriggerConfig {
        function: "bench".into(),
        queue_url: url.to_owned(),
        queue: QueueUrl::parse(url).expect("url"),
        batch_size: 10,
        batch_window: Duration::ZERO,
        max_concurrency,
        report_batch_item_failures,
        enabled: true,
        filters: Vec::new(),
        function_timeout: Duration::from_secs(30),
        long_poll: Duration::from_secs(20),
    };
    let started = Instant::now();
    let poller = Poller::start(
        config,
        Arc::new(Clients::new(moto.sdk_config())),
        target,
        &SqsMetrics::unregistered(),
    );
    while (poller.status().deleted as usize) < n {
        let status = poller.status();
        assert!(
            status.failed == 0,
            "the function failed messages: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    poller.stop(Some(Duration::from_millis(100))).await;
    rate
}

/// CPU time this process has used (user + system), from `/proc/self/stat` (clock ticks of
/// 10 ms: the runs below take seconds).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at state, field 3.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// A line through the poller: `maxConcurrency`, the function, `reportBatchItemFailures`.
type PollerLine<'a> = (usize, &'a Arc<dyn FunctionTarget>, bool);

/// One measured line: messages/s and this process's CPU per message.
#[derive(Default)]
struct Samples {
    rates: Vec<f64>,
    cpu_us: Vec<f64>,
}

impl Samples {
    fn median(values: &[f64]) -> f64 {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    }
}

fn main() {
    let mut messages = 500usize;
    let mut rounds = 3usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--messages" => {
                messages = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--messages N");
            }
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--rounds N")
            }
            _ => {}
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let moto = moto();
        let runtime = WasmRuntime::new(WasmConfig {
            cache_dir: None,
            ..WasmConfig::default()
        })
        .expect("wasm engine");
        let hello: Arc<dyn FunctionTarget> = Arc::new(Wasm(load(&runtime, "hello").await));
        let consumer: Arc<dyn FunctionTarget> =
            Arc::new(Wasm(load(&runtime, "sqs-consumer").await));
        println!(
            "sqs bench: {messages} messages per run, {rounds} rounds, moto at {}",
            moto.endpoint
        );
        // hello answers text, so it runs without reportBatchItemFailures (its answer would be
        // malformed, failing every batch); the consumer answers a partial batch response.
        let lines: [(&str, Option<PollerLine<'_>>); 4] = [
            ("baseline (receive/delete)", None),
            ("poller c=1 + hello", Some((1, &hello, false))),
            ("poller c=5 + hello", Some((5, &hello, false))),
            ("poller c=5 + sqs-consumer", Some((5, &consumer, true))),
        ];
        let mut samples: Vec<Samples> = lines.iter().map(|_| Samples::default()).collect();
        let mut run = 0;
        for _ in 0..rounds {
            for ((_, line), sample) in lines.iter().zip(samples.iter_mut()) {
                run += 1;
                let url = preload(moto, &format!("run{run}"), messages).await;
                let cpu = cpu_time();
                let rate = match line {
                    None => bare_loop(moto, &url, messages).await,
                    Some((concurrency, target, report)) => {
                        through_poller(
                            moto,
                            &url,
                            messages,
                            *concurrency,
                            Arc::clone(target),
                            *report,
                        )
                        .await
                    }
                };
                let used = cpu_time().saturating_sub(cpu);
                sample.rates.push(rate);
                sample
                    .cpu_us
                    .push(used.as_secs_f64() * 1e6 / messages as f64);
            }
        }
        let baseline = Samples::median(&samples[0].rates);
        println!(
            "{:<28} {:>9} {:>7} {:>13}",
            "line (median of rounds)", "msgs/s", "ratio", "cpu us/msg"
        );
        for ((label, _), sample) in lines.iter().zip(&samples) {
            let rate = Samples::median(&sample.rates);
            println!(
                "{label:<28} {rate:>9.1} {:>7.2} {:>13.0}",
                rate / baseline,
                Samples::median(&sample.cpu_us)
            );
        }
    });
}
