//! `bench_retry`: the performance goals, measured side by side in one run.
//!
//! ```text
//! cargo build --release --bin tekton-retry --example bench_retry
//! target/release/examples/bench_retry --retries 256 --concurrency 64
//! ```
//!
//! 1. Starts the sandbox in this process (API emulator with its aggregator front proxy, the Tekton
//!    simulator), and the real `tekton-retry serve` binary as a child process (pinned to one CPU
//!    for the discovery load); with `--in-process`, or without the binary, the sandbox's own
//!    in-process server instead.
//! 2. Seeds the Tasks and Pipeline and creates 2×N fresh failed runs (task `b` fails once).
//! 3. Retries N of them through the front door (client → front proxy → `serve` → engine → API)
//!    and N with the floor: the same engine code with the same options, run in this process with
//!    the server's identity straight against the same emulator — exactly the API calls a retry
//!    makes, without the front proxy and `serve` hops. Both in alternating batches of C.
//! 4. Keep-alive load on discovery straight at the retry server; RSS of the server process.
//!
//! Ends with `ratio_median=R ratio_p99=R discovery_rps=N rss_idle_mib=N rss_peak_mib=N
//! api_calls_per_retry=N watches_per_retry=N latency_p50_ms=N latency_p99_ms=N`: the requests the
//! server's identity made per retry during the retries (both paths, the server's recorder
//! included; reviews of callers not counted), and the server path's request latency.

mod child;
mod discovery;
mod floor;
mod runs;
mod stats;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tekton_retry::retry::engine::EngineOptions;
use tekton_retry::retry::Engine;
use tekton_retry_sandbox::{Sandbox, SandboxOptions};

use stats::{ms, rss_mib, summarize, Summary};

/// Measure the retry server against its floor.
#[derive(Parser, Debug)]
struct Args {
    /// Retries per path (server and floor each retry this many fresh runs).
    #[arg(long, default_value_t = 64)]
    retries: usize,
    /// Retries in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Discovery requests to send (keep-alive).
    #[arg(long, default_value_t = 100_000)]
    discovery_requests: usize,
    /// Keep-alive connections for the discovery load.
    #[arg(long, default_value_t = 4)]
    discovery_connections: usize,
    /// The `tekton-retry` binary to run as the server (default: next to this example).
    #[arg(long)]
    serve_bin: Option<PathBuf>,
    /// PipelineRuns never retried (pending, so the simulator leaves them alone) to create before
    /// the retries, to show that the server's memory and the recorder's work do not grow with them.
    #[arg(long, default_value_t = 0)]
    never_retried: usize,
    /// Use the sandbox's in-process server instead of a `serve` process (RSS is then the whole
    /// process's, emulator and simulator included).
    #[arg(long)]
    in_process: bool,
    /// CPU the `serve` process is pinned to (`taskset`); the load generator uses the others.
    #[arg(long, default_value_t = 0)]
    serve_cpu: usize,
    /// Don't pin anything to CPUs.
    #[arg(long)]
    no_pin: bool,
    /// Retries each engine works on at once (`serve --max-concurrent-retries`, and the floor's
    /// engine the same).
    #[arg(long, default_value_t = EngineOptions::default().max_concurrent)]
    max_concurrent_retries: usize,
    /// Where the `serve` process's log goes.
    #[arg(long, default_value = "/tmp/bench-retry-serve.log")]
    serve_log: PathBuf,
    /// Run the floor's engine in a process of its own, as `serve` runs, instead of in this
    /// process beside the emulator (where its API calls never wait for another process to be
    /// scheduled, but it shares a runtime with the emulated cluster).
    #[arg(long)]
    floor_process: bool,
    /// Internal: be the floor's worker process, with this kubeconfig (see `floor.rs`).
    #[arg(long, hide = true)]
    floor_worker: Option<PathBuf>,
    /// Internal: the user the floor worker retries as (JSON `UserInfo`).
    #[arg(long, hide = true, default_value = "")]
    floor_user: String,
}

/// Where the floor's engine runs.
#[derive(Clone)]
enum Floor {
    InProcess(Engine, tekton_retry::api::UserInfo),
    Process(Arc<floor::FloorProcess>),
}

impl Floor {
    async fn retry(&self, name: String) -> runs::Outcome {
        match self {
            Floor::InProcess(engine, user) => runs::retry_direct(engine, user, &name).await,
            Floor::Process(p) => p.retry(name).await,
        }
    }
}

/// Engine options of the in-process mode: those of the sandbox tests (a short verification
/// window), with a 5 s wait for deleted runs and pods.
fn quick_engine() -> EngineOptions {
    let mut opts = tekton_retry_test_support::sandbox::quick_engine();
    opts.executor.wait_gone_timeout = Duration::from_secs(5);
    opts
}

fn taskset_available() -> bool {
    std::process::Command::new("taskset")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Pins every thread of process `pid` to `cpus` (a `taskset` list such as `1` or `0-1`).
fn pin_to(pid: &str, cpus: &str) {
    let _ = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, pid])
        .output();
}

fn print_summary(label: &str, s: &Summary) {
    println!(
        "  {label:<8} n={:<4} p50={:>8.1} ms  p99={:>8.1} ms  max={:>8.1} ms",
        s.count,
        ms(s.p50),
        ms(s.p99),
        ms(s.max)
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Some(kubeconfig) = &args.floor_worker {
        return floor::worker(kubeconfig, &args.floor_user, args.max_concurrent_retries).await;
    }
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let pin = !args.no_pin && cpus >= 2 && taskset_available();
    println!("machine: {}", stats::machine());

    let bin = args.serve_bin.clone().or_else(child::default_binary);
    let use_child = !args.in_process && bin.is_some();
    // The floor runs the engine with exactly the options the server path's engine has.
    let mut engine_opts = if use_child {
        EngineOptions::default()
    } else {
        quick_engine()
    };
    engine_opts.max_concurrent = args.max_concurrent_retries;
    let (window, poll) = (
        engine_opts.executor.verify_window,
        engine_opts.executor.poll_interval,
    );
    let sb = Sandbox::start(SandboxOptions {
        seed: false,
        engine: engine_opts.clone(),
        recorder_enabled: !use_child,
        ..Default::default()
    })
    .await
    .context("starting the sandbox")?;

    let mut serve = None;
    let (server_pid, retry_addr, retry_ca) = match (use_child, &bin) {
        (true, Some(bin)) => {
            // Unpinned while it serves retries (it shares the machine with the emulator like the
            // floor does); pinned to one CPU for the discovery load.
            let p =
                child::start(&sb, bin, None, args.max_concurrent_retries, &args.serve_log).await?;
            sb.emulator.set_aggregated_backend(&p.url(), &p.ca_pem)?;
            anyhow::ensure!(
                sb.emulator
                    .wait_aggregated_available(Duration::from_secs(20))
                    .await,
                "the front proxy does not find the serve process available"
            );
            println!(
                "server: `{} serve` as process {}; ready {:.0} ms after start (API reachable)",
                bin.display(),
                p.pid(),
                ms(p.ready_after)
            );
            let out = (p.pid(), p.addr, p.ca_pem.clone());
            serve = Some(p);
            out
        }
        _ => {
            println!("server: in-process (RSS figures are the whole bench process's)");
            let addr = sb
                .retry_url()
                .trim_start_matches("https://")
                .parse()
                .context("retry address")?;
            ("self".to_string(), addr, sb.retry_ca_pem().to_string())
        }
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss_idle, _) = rss_mib(&server_pid).unwrap_or_default();
    let rss_before_load = rss_idle;

    // Discovery first, on a quiet sandbox, with the load generator off the server's CPU.
    if let (true, Some(p)) = (pin, &serve) {
        let others: Vec<String> = (0..cpus)
            .filter(|&i| i != args.serve_cpu)
            .map(|i| i.to_string())
            .collect();
        pin_to(&p.pid(), &args.serve_cpu.to_string());
        pin_to(&std::process::id().to_string(), &others.join(","));
        println!(
            "discovery: serve pinned to CPU {}, the load generator to CPU {}",
            args.serve_cpu,
            others.join(",")
        );
    }
    let tls = discovery::tls_config(&retry_ca, &sb.emulator.client_cert("admin")?)?;
    let mut d = discovery::run(
        retry_addr,
        tls,
        args.discovery_connections,
        args.discovery_requests,
        Duration::from_secs(60),
    )
    .await?;
    if pin {
        let all = format!("0-{}", cpus - 1);
        pin_to(&std::process::id().to_string(), &all);
        if let Some(p) = &serve {
            pin_to(&p.pid(), &all);
        }
    }
    let (rss_after_load, _) = rss_mib(&server_pid).unwrap_or_default();

    // Runs.
    let admin = sb.client("admin")?;
    runs::seed_pipeline(&admin).await?;
    if args.never_retried > 0 {
        let events = |text: &str| {
            text.lines()
                .find(|l| l.starts_with("tekton_retry_recorder_events_total"))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let metrics = scrape(&sb, retry_addr, &retry_ca).await?;
        let (rss_before, _) = rss_mib(&server_pid).unwrap_or_default();
        let t = std::time::Instant::now();
        runs::create_pending(&admin, args.never_retried).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (rss_after, _) = rss_mib(&server_pid).unwrap_or_default();
        let after = scrape(&sb, retry_addr, &retry_ca).await?;
        println!(
            "never retried: {} runs created in {:.1} s; serve RSS {rss_before:.1} -> {rss_after:.1} MiB; \
             recorder events {} -> {}",
            args.never_retried,
            t.elapsed().as_secs_f64(),
            events(&metrics),
            events(&after)
        );
    }
    let n = args.retries.max(1);
    let c = args.concurrency.max(1);
    let server_names: Vec<String> = (0..n).map(|i| format!("srv-{i}")).collect();
    let floor_names: Vec<String> = (0..n).map(|i| format!("floor-{i}")).collect();
    let all: Vec<String> = server_names.iter().chain(&floor_names).cloned().collect();
    let t = std::time::Instant::now();
    runs::create_failed(&admin, &all).await?;
    println!(
        "created {} failed runs in {:.1} s",
        all.len(),
        t.elapsed().as_secs_f64()
    );

    let mut cfg = sb.emulator.kube_config("admin")?;
    cfg.default_retry = false;
    let front = kube::Client::try_from(cfg)?;
    let user = sb.emulator.user_info("admin").context("the admin user")?;
    // The floor's engine runs in this process, or with `--floor-process` in one of its own.
    let floor = if use_child && args.floor_process {
        let p = floor::FloorProcess::start(
            &sb.emulator.server_kubeconfig_yaml()?,
            &user,
            args.max_concurrent_retries,
        )?;
        println!(
            "floor: the engine in its own process ({}), with serve's options",
            p.pid().unwrap_or_default()
        );
        Floor::Process(Arc::new(p))
    } else {
        println!("floor: the engine in this process, beside the emulator");
        Floor::InProcess(
            Engine::new(
                kube::Client::try_from(sb.emulator.server_kube_config()?)?,
                engine_opts,
            ),
            user,
        )
    };
    // The client's latency of each server-path retry, by run name (to set against serve's own).
    let client_took: Arc<std::sync::Mutex<HashMap<String, Duration>>> = Arc::default();
    let took = client_took.clone();
    let via_server = Arc::new(move |name: String| {
        let (front, took) = (front.clone(), took.clone());
        async move {
            let outcome = runs::retry_via_server(&front, &name).await;
            if let (Ok(d), Ok(mut m)) = (&outcome, took.lock()) {
                m.insert(name, *d);
            }
            outcome
        }
    });
    let direct = Arc::new(move |name: String| {
        let floor = floor.clone();
        async move { floor.retry(name).await }
    });
    let (mut srv_lat, mut floor_lat, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    sb.emulator.faults().clear_log();
    for (round, (s, f)) in server_names
        .chunks(c)
        .zip(floor_names.chunks(c))
        .enumerate()
    {
        // Alternate which path goes first, so that drift in the machine's load hits both.
        let (a, b) = if round % 2 == 0 {
            let a = runs::drive(s, c, via_server.clone()).await;
            (a, runs::drive(f, c, direct.clone()).await)
        } else {
            let b = runs::drive(f, c, direct.clone()).await;
            (runs::drive(s, c, via_server.clone()).await, b)
        };
        for (outcomes, into) in [(a, &mut srv_lat), (b, &mut floor_lat)] {
            for o in outcomes {
                match o {
                    Ok(d) => into.push(d),
                    Err(e) => errors.push(e),
                }
            }
        }
    }
    let (_, rss_peak_retries) = rss_mib(&server_pid).unwrap_or_default();
    let server_user = "system:serviceaccount:tekton-retry:tekton-retry";
    let (mut calls, mut watches) = (0usize, 0usize);
    for r in sb.emulator.faults().requests() {
        if r.user != server_user || r.resource.ends_with("reviews") {
            continue;
        }
        if r.verb == "watch" {
            watches += 1;
        } else {
            calls += 1;
        }
    }
    let retried = (2 * n) as f64;
    let (calls_per_retry, watches_per_retry) = (calls as f64 / retried, watches as f64 / retried);
    println!(
        "kube-apiserver load: {calls} requests and {watches} watches by the server's identity for {} retries",
        2 * n
    );
    let srv = summarize(&mut srv_lat);
    let floor = summarize(&mut floor_lat);
    let ratio = |a: Duration, b: Duration| {
        if b.is_zero() {
            f64::NAN
        } else {
            a.as_secs_f64() / b.as_secs_f64()
        }
    };
    let (ratio_median, ratio_p99) = (ratio(srv.p50, floor.p50), ratio(srv.p99, floor.p99));
    println!(
        "retries: {n} per path at concurrency {c} (engine verify window {} ms, poll {} ms on both paths)",
        window.as_millis(),
        poll.as_millis()
    );
    print_summary("server", &srv);
    print_summary("floor", &floor);
    println!(
        "  server path adds {:.1} ms at p50, {:.1} ms at p99; ratio p50 {ratio_median:.3}, p99 {ratio_p99:.3}",
        ms(srv.p50) - ms(floor.p50),
        ms(srv.p99) - ms(floor.p99)
    );
    if serve.is_some() {
        // Where the server path's time goes: the front door (client, front proxy, TLS, serve's
        // connection handling) against serve's handler (authentication, authorization, routing,
        // the engine), per request.
        let handler = child::handler_latencies(&args.serve_log);
        let client = client_took.lock().map(|m| m.clone()).unwrap_or_default();
        let (mut inside, mut door) = (Vec::new(), Vec::new());
        for (name, c) in &client {
            if let Some(h) = handler.get(name) {
                inside.push(*h);
                door.push(c.saturating_sub(*h));
            }
        }
        let (inside, door) = (summarize(&mut inside), summarize(&mut door));
        println!(
            "  serve's own latency (its access log) p50 {:.1} ms, p99 {:.1} ms; the front door \
             (client latency - serve's, per request) p50 {:.1} ms, p99 {:.1} ms over {} requests",
            ms(inside.p50),
            ms(inside.p99),
            ms(door.p50),
            ms(door.p99),
            door.count
        );
    }
    if !errors.is_empty() {
        println!("  {} retries failed, e.g. {}", errors.len(), errors[0]);
    }

    let (_, rss_hwm) = rss_mib(&server_pid).unwrap_or_default();
    let rps = d.requests as f64 / d.elapsed.as_secs_f64();
    let dl = summarize(&mut d.latencies);
    println!(
        "discovery: {} requests over {} keep-alive connections in {:.2} s = {rps:.0} req/s; p50 {:.3} ms, p99 {:.3} ms; {} errors",
        d.requests,
        args.discovery_connections,
        d.elapsed.as_secs_f64(),
        ms(dl.p50),
        ms(dl.p99),
        d.errors
    );
    println!(
        "memory of {}: idle {rss_idle:.1} MiB; peak {rss_hwm:.1} MiB (after the retries {rss_peak_retries:.1}); \
         RSS before/after the discovery load {rss_before_load:.1}/{rss_after_load:.1} MiB",
        if serve.is_some() { "serve" } else { "the bench process" }
    );
    if let Some(p) = &serve {
        println!("ready_ms={:.0}", ms(p.ready_after));
    }
    println!(
        "ratio_median={ratio_median:.3} ratio_p99={ratio_p99:.3} discovery_rps={rps:.0} rss_idle_mib={rss_idle:.1} rss_peak_mib={rss_hwm:.1} \
         api_calls_per_retry={calls_per_retry:.1} watches_per_retry={watches_per_retry:.1} latency_p50_ms={:.0} latency_p99_ms={:.0}",
        ms(srv.p50),
        ms(srv.p99)
    );
    drop(serve);
    sb.shutdown(Duration::from_secs(1)).await;
    Ok(())
}

/// `GET /metrics` of the retry server as the sandbox's admin.
async fn scrape(sb: &Sandbox, addr: std::net::SocketAddr, ca_pem: &str) -> anyhow::Result<String> {
    let mut cfg = sb.emulator.kube_config("admin")?;
    cfg.cluster_url = format!("https://{addr}").parse()?;
    let der: Vec<Vec<u8>> = rustls_pemfile::certs(&mut ca_pem.as_bytes())
        .filter_map(Result::ok)
        .map(|c| c.to_vec())
        .collect();
    cfg.root_cert = Some(der);
    let client = kube::Client::try_from(cfg)?;
    let req = http::Request::get("/metrics").body(Vec::new())?;
    Ok(client.request_text(req).await?)
}
