//! The `huddle` binary: parse the command line, start what it names.

use std::process::ExitCode;

use clap::Parser;
use tokio::net::TcpListener;

use huddle::cli::{Cli, Command, ServeArgs};
use huddle::server::{Server, ServerConfig};

fn main() -> ExitCode {
    let cli = Cli::parse();
    huddle::logging::init(cli.log_level.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    #[cfg(feature = "app")]
    if let Some(Command::Inspect(args)) = &cli.command {
        // A window too, on this thread.
        return match huddle::ui::debugger::inspect::run(&args.file, args.window_size) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    #[cfg(feature = "app")]
    if cli.command.is_none() {
        // The window runs on this (main) thread; the runtime serves the SDK.
        let result = cli
            .app
            .into_options()
            .and_then(|options| Ok(huddle::ui::run(&runtime, options)?));
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    #[cfg(not(feature = "app"))]
    if cli.app.any() {
        eprintln!("error: this huddle was built without the `app` feature (no desktop app)");
        return ExitCode::FAILURE;
    }
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Check(args)) => {
            let items = huddle::check::run(&args.into_config()?).await;
            for item in &items {
                println!("{item}");
            }
            if huddle::check::has_blocker(&items) {
                anyhow::bail!("something above blocks huddle on this machine");
            }
            Ok(())
        }
        Some(Command::Sign(args)) => {
            let (signature, ctime) = args.sign()?;
            println!("signature={signature}");
            println!("ctime={ctime}");
            Ok(())
        }
        #[cfg(feature = "client")]
        Some(Command::Bot(args)) => with_client::bot(args).await,
        #[cfg(feature = "client")]
        Some(Command::Demo(args)) => with_client::demo(args).await,
        #[cfg(feature = "client")]
        Some(Command::Record(args)) => with_client::record(args).await,
        // Handled before the runtime runs (it opens a window on this thread).
        #[cfg(feature = "app")]
        Some(Command::Inspect(_)) => Ok(()),
        #[cfg(feature = "client")]
        None => {
            with_client::demo(huddle::cli::DemoArgs {
                listen: "127.0.0.1:0".parse()?,
                duration: None,
                profile: "360p_2".into(),
                json: false,
            })
            .await
        }
        #[cfg(not(feature = "client"))]
        None => anyhow::bail!(
            "this huddle was built without the `client` feature: \
             it has `huddle serve` and `huddle sign` only (see --help)"
        ),
    }
}

#[cfg(any(not(unix), feature = "client"))]
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        // No signal handler available: run until killed.
        std::future::pending::<()>().await;
    }
}

/// Installs handlers for Ctrl-C (SIGINT) and SIGTERM, the signal systemd,
/// Docker and Kubernetes stop a service with, and returns a future that
/// completes on either: both are a clean shutdown. Installed when called, so
/// a signal that arrives before the future is first polled is not lost.
#[cfg(unix)]
fn stop_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let signals: Vec<_> = [
        ("SIGINT", SignalKind::interrupt()),
        ("SIGTERM", SignalKind::terminate()),
    ]
    .into_iter()
    .filter_map(|(name, kind)| match signal(kind) {
        Ok(signal) => Some(signal),
        Err(e) => {
            eprintln!("warning: cannot handle {name} ({e}); it will not stop the server cleanly");
            None
        }
    })
    .collect();
    async move {
        if signals.is_empty() {
            std::future::pending::<()>().await;
        }
        let waits = signals.into_iter().map(|mut signal| {
            Box::pin(async move {
                signal.recv().await;
            })
        });
        futures_util::future::select_all(waits).await;
    }
}

#[cfg(not(unix))]
fn stop_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    ctrl_c()
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.into_config()?;
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    print_apps(&config.server, config.dev_app);
    // Before the address is out: a client may connect and a signal follow.
    let stop = stop_signal();
    let (ws, http) = match config.server.tls {
        Some(_) => ("wss", "https"),
        None => ("ws", "http"),
    };
    eprintln!("huddle server listening on {ws}://{addr}");
    eprintln!("web client: open {http}://{addr}/ in a browser");
    Server::new(config.server).run(listener, stop).await?;
    Ok(())
}

fn print_apps(config: &ServerConfig, dev: bool) {
    for (id, key) in config.apps.iter() {
        if dev {
            eprintln!("no app configured; dev app: --app-id {id} --app-key {key}");
        } else {
            eprintln!("accepting app {id}");
        }
    }
}

/// The commands that run the client SDK (`bot`, `demo`), which needs the
/// codecs (feature `client`).
#[cfg(feature = "client")]
mod with_client {
    use std::time::Duration;

    use tokio::net::TcpListener;

    use huddle::bot::{self, BotConfig};
    use huddle::cli::{BotArgs, DemoArgs};
    use huddle::client::Credential;
    use huddle::protocol::{AppId, RoomId};
    use huddle::server::{Server, ServerConfig};

    use super::ctrl_c;

    pub async fn bot(args: BotArgs) -> anyhow::Result<()> {
        let config = args.into_config()?;
        let report = bot::run(config, ctrl_c()).await?;
        print_run_summary(&report);
        Ok(())
    }

    pub async fn record(args: huddle::cli::RecordArgs) -> anyhow::Result<()> {
        let config = args.into_config()?;
        let report = bot::record::run(config, ctrl_c()).await?;
        for file in &report.files {
            println!(
                "recorded {}: {} video frames ({} dropped waiting for a keyframe), {} audio packets, {} silent frames",
                file.path.display(),
                file.video_frames,
                file.video_dropped,
                file.audio_packets,
                file.audio_silence
            );
        }
        for (stream, e) in &report.failed {
            eprintln!("stream {}: {e:#}", stream.0);
        }
        if !report.failed.is_empty() && report.files.is_empty() {
            anyhow::bail!("nothing was recorded");
        }
        Ok(())
    }

    fn print_run_summary(report: &bot::BotReport) {
        if let Some(l) = report.latency() {
            eprintln!(
                "run: glass-to-glass over {} frames: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                l.samples, l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
            );
        }
        let joins = &report.join_to_first_frame_ms;
        if let Some(j) =
            huddle::client::stats::latency_summary(joins.iter().map(|ms| (ms * 1000.0) as u64))
        {
            eprintln!(
                "run: join -> first frame over {} subscriptions: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
                j.samples, j.p50_ms, j.p99_ms, j.max_ms
            );
        }
    }

    pub async fn demo(args: DemoArgs) -> anyhow::Result<()> {
        let config = ServerConfig::new(huddle::auth::AppRegistry::dev());
        let (app_id, app_key) = config
            .apps
            .iter()
            .next()
            .map(|(id, key)| (id.to_owned(), key.to_owned()))
            .ok_or_else(|| anyhow::anyhow!("dev app missing"))?;
        let listener = TcpListener::bind(args.listen).await?;
        let addr = listener.local_addr()?;
        let server = Server::new(config);
        let server_task = tokio::spawn(server.run(listener, std::future::pending()));
        eprintln!("huddle demo: server on ws://{addr}, room 'demo', app {app_id}");
        eprintln!(
            "join from another terminal: huddle bot --server ws://{addr} --room demo --user you --subscribe --app-id {app_id} --app-key {app_key}"
        );
        eprintln!("or from a browser: http://{addr}/?app={app_id}&room=demo&user=you");
        let base = BotConfig {
            duration: args.duration.map(Duration::from_secs_f64),
            json: args.json,
            video_profile: huddle::cli::video_profile(&args.profile)?,
            ..BotConfig::publisher(
                format!("ws://{addr}"),
                AppId(app_id),
                Credential::AppKey {
                    key: app_key,
                    valid_for: Duration::from_secs(2 * 3600),
                },
                RoomId("demo".into()),
                "alice",
            )
        };
        let publisher = tokio::spawn(bot::run(base.clone(), ctrl_c()));
        let subscriber = bot::run(
            BotConfig {
                user_id: "bob".into(),
                publish: false,
                subscribe: true,
                print: true,
                ..base
            },
            ctrl_c(),
        )
        .await?;
        print_run_summary(&subscriber);
        publisher.await??;
        server_task.abort();
        Ok(())
    }
}
