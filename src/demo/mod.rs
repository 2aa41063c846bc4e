//! `mlmon demo`: an example model server, the sidecar in front of it, and a synthetic
//! client whose inputs drift after a while — everything in this one binary.

/// Prints a line to stdout, ignoring a closed pipe (`mlmon demo | head` must not panic).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub mod model;
pub mod traffic;

use std::time::Duration;

use tokio::net::TcpListener;

use crate::config::{Config, Overrides};
use crate::error::StartError;
use crate::shutdown;

/// `mlmon demo` flags.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Proxy listen address.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: String,
    /// Admin listen address (/metrics, API).
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub admin_listen: String,
    /// Seconds of normal traffic before the inputs start to drift.
    #[arg(long, default_value_t = 60)]
    pub drift_after: u64,
    /// Requests per second sent by the synthetic client.
    #[arg(long, default_value_t = 20.0)]
    pub rps: f64,
    /// Require this bearer token on the admin API (`admin.token`), as a production sidecar
    /// would; the status page then asks for it.
    #[arg(long, env = "MLMON_ADMIN__TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Send a copy of every request to version 2 of the model, a retrained candidate, as
    /// shadow traffic (docs/shadow.md).
    #[arg(long)]
    pub shadow: bool,
}

/// The configuration the demo sidecar runs with: short windows so drift shows quickly.
pub fn demo_config(args: &DemoArgs, upstream: &str) -> Result<Config, StartError> {
    let overrides = Overrides {
        listen: Some(args.listen.clone()),
        upstream: Some(upstream.to_string()),
        admin_listen: Some(args.admin_listen.clone()),
        baseline_files: Vec::new(),
        model: Some(model::MODEL.to_string()),
    };
    let mut cfg = Config::load_from(None, &overrides, std::iter::empty())?;
    cfg.drift.window = Duration::from_secs(60);
    // The demo's traffic posts ground truth without a token (SPEC section 9), or with the
    // one given.
    cfg.admin.allow_unauthenticated = true;
    cfg.admin.token = args.admin_token.clone().filter(|t| !t.is_empty());
    cfg.drift.interval = Duration::from_secs(2);
    // The bundled dashboards' fleet-wide panels read the per-bin series: the demo shows them.
    cfg.drift.fleet_bins = crate::config::FleetBins::Full;
    cfg.sla.latency = Duration::from_millis(50);
    // The demo model is local and cheap: show permutation importance (off by default).
    cfg.explain.interval = Duration::from_secs(5);
    if args.shadow {
        // The candidate is served by the same demo model server, under version 2.
        cfg.shadow.upstream = Some(upstream.to_string());
        cfg.shadow.path = Some(format!("/v2/models/{}/versions/2/infer", model::MODEL));
    }
    Ok(cfg)
}

/// The demo model's baseline: `rows` applicants from the training distribution with
/// the model's predictions, built like `mlmon baseline build` would.
pub fn training_baseline(rows: usize) -> Result<crate::baseline::Snapshot, StartError> {
    use crate::record::{FeatureValue, Prediction, Row};
    let mut options = crate::baseline::BuildOptions::new(model::MODEL);
    options.model_version = Some("1".into());
    options.source = Some("mlmon demo: synthetic training data".into());
    let mut builder = crate::baseline::BaselineBuilder::new(options, rows);
    let mut gen = traffic::Generator::new(7);
    for _ in 0..rows {
        let a = gen.applicant(false);
        let p = model::predict_proba(a.income, a.age, a.debt_ratio, a.num_accounts, a.region);
        builder.push_row(&Row {
            values: vec![
                ("income".into(), FeatureValue::Number(a.income)),
                ("age".into(), FeatureValue::Number(a.age)),
                ("debt_ratio".into(), FeatureValue::Number(a.debt_ratio)),
                ("num_accounts".into(), FeatureValue::Number(a.num_accounts)),
                ("region".into(), FeatureValue::Text(a.region.into())),
            ],
        });
        builder.push_prediction(&Prediction {
            value: FeatureValue::Number(if p >= 0.5 { 1.0 } else { 0.0 }),
            probabilities: Some(vec![1.0 - p, p]),
        });
    }
    builder
        .finish()
        .map_err(|e| StartError::Other(format!("demo baseline: {e}")))
}

/// Runs the demo until Ctrl-C or `--duration`.
pub async fn run(args: DemoArgs) -> Result<(), StartError> {
    let model_listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| StartError::Other(format!("demo model server: cannot listen: {e}")))?;
    let model_addr = model_listener
        .local_addr()
        .map_err(|e| StartError::Other(format!("demo model server: {e}")))?;
    // Stopped last, after the traffic and the sidecar, so no request meets a dead model.
    let (model_trigger, model_stop) = shutdown::channel();
    let model_task = tokio::spawn(model::serve(model_listener, model_stop));
    let (trigger, stop) = shutdown::channel();

    let cfg = demo_config(&args, &format!("http://{model_addr}"))?;
    let running = crate::server::start(cfg).await?;
    let baseline = training_baseline(5000)?;
    let baseline_id = baseline.id.clone();
    running
        .state
        .baselines
        .set(model::MODEL, std::sync::Arc::new(baseline))
        .map_err(|e| StartError::Other(format!("demo baseline: {e}")))?;
    let proxy = format!("http://{}", running.proxy_addr);
    let admin = format!("http://{}", running.admin_addr);
    // The page first: it is what a newcomer should open.
    say!("mlmon demo is running: open the status page at {admin}/");
    say!(
        "  model server (direct):  http://{model_addr}/v2/models/{}/infer",
        model::MODEL
    );
    say!(
        "  proxy (send traffic):   {proxy}/v2/models/{}/infer",
        model::MODEL
    );
    say!("  metrics:                {admin}/metrics");
    say!("  models API:             {admin}/api/v1/models");
    say!(
        "  drift API:              {admin}/api/v1/models/{}/drift",
        model::MODEL
    );
    say!(
        "  importance API:         {admin}/api/v1/models/{}/importance",
        model::MODEL
    );
    if args.shadow {
        say!(
            "  shadow API:             {admin}/api/v1/models/{}/shadow (version 2 gets a copy of every request)",
            model::MODEL
        );
    }
    say!("  baseline:               {baseline_id} (5000 synthetic training rows)");
    say!(
        "  drift starts after {}s of traffic at {} requests/s; Ctrl-C to stop",
        args.drift_after,
        args.rps
    );
    let traffic = tokio::spawn(traffic::run(
        proxy,
        Some(admin.clone()),
        args.admin_token.clone().filter(|t| !t.is_empty()),
        args.rps,
        Duration::from_secs(args.drift_after),
        stop.clone(),
    ));

    match args.duration {
        Some(secs) => {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(secs)) => {}
                _ = shutdown::os_signal() => {}
            }
        }
        None => shutdown::os_signal().await,
    }
    trigger.fire();
    let _ = traffic.await;
    running.shutdown();
    running.wait().await;
    model_trigger.fire();
    let _ = model_task.await;
    say!("mlmon demo stopped");
    Ok(())
}
