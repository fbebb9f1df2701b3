//! The `fieldwork` command line: `serve` (default), `migrate`, `openapi`. Thin by design: everything it runs
//! is in the library, so the tests exercise the same code.

use std::sync::Arc;

use clap::{Parser, Subcommand};
use fieldwork::clock::{Clock, SystemClock};
use fieldwork::config::Settings;
use fieldwork::db::Db;
use fieldwork::startup::{AppState, Application, resolve_secret};
use fieldwork::{api, demo, telemetry};

#[derive(Parser)]
#[command(
    name = "fieldwork",
    version,
    about = "Fieldwork: the customer managers' field-work API"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (the default).
    Serve {
        /// Load demo data into an empty database and print the demo logins.
        #[arg(long)]
        demo: bool,
        // Boxed: the settings are most of the command's size.
        #[command(flatten)]
        settings: Box<Settings>,
    },
    /// Apply pending migrations and exit.
    Migrate {
        /// `sqlite://PATH` or `postgres://…`.
        #[arg(
            long,
            env = "DATABASE_URL",
            default_value = "sqlite://data/fieldwork.db"
        )]
        database_url: String,
    },
    /// Print the OpenAPI document to stdout.
    Openapi,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Openapi) => {
            println!("{}", api::openapi().to_pretty_json()?);
            Ok(())
        }
        Some(Command::Migrate { database_url }) => {
            telemetry::init(false);
            let db = Db::new(&database_url, 1, std::time::Duration::from_secs(10))?;
            let n = db.migrate()?;
            println!("applied {n} migration(s)");
            Ok(())
        }
        Some(Command::Serve { demo, settings }) => serve(*settings, demo),
        None => {
            let Cli {
                command: Some(Command::Serve { demo, settings }),
            } = Cli::parse_from(
                std::env::args()
                    .take(1)
                    .chain(["serve".to_owned()])
                    .chain(std::env::args().skip(1)),
            )
            else {
                anyhow::bail!("could not parse the command line")
            };
            serve(*settings, demo)
        }
    }
}

#[actix_web::main]
async fn serve(settings: Settings, demo_mode: bool) -> anyhow::Result<()> {
    telemetry::init(settings.log_json);
    settings.validate()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let db = Db::new(
        &settings.database_url,
        settings.db_pool_size,
        settings.db_timeout(),
    )?;
    let applied = db.migrate()?;
    tracing::info!(migrations.applied = applied, "database ready");
    prepare_data(&db, demo_mode, clock.now())?;
    let secret = resolve_secret(&settings);
    let bind = settings.bind.clone();
    spawn_jobs(&db, &settings, clock.clone())?;
    let app = Application::build(AppState::new(db, settings, &secret, clock))?;
    let host = bind.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h);
    println!("Fieldwork listening on http://{host}:{}", app.port());
    println!(
        "  API docs: http://{host}:{}/docs/   OpenAPI: http://{host}:{}/openapi.json",
        app.port(),
        app.port()
    );
    app.run_until_stopped().await?;
    Ok(())
}

/// Starts the scheduler and the push dispatcher in the background, one pass of each every `tick_secs`.
/// Safe on every instance at once (unique keys and leases in the database).
fn spawn_jobs(db: &Db, settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    if settings.tick_secs == 0 {
        return Ok(());
    }
    let fcm = settings.fcm_service_account_key.clone().map(|path| {
        let mut c = fieldwork::push::FcmConfig::new(path);
        c.base_url.clone_from(&settings.fcm_base_url);
        c.project_id.clone_from(&settings.fcm_project_id);
        c
    });
    let gateway = fieldwork::push::build_gateway(fcm, clock.clone())?;
    tracing::info!(gateway = gateway.name(), "push gateway ready");
    // A pass over a large bank takes seconds; requests keep their own bound.
    let db = db.for_jobs(std::time::Duration::from_secs(600));
    let every = std::time::Duration::from_secs(settings.tick_secs);
    let window_days = settings.reminder_window_days;
    let feb29 = settings.feb29.rule();
    tokio::spawn(async move {
        let jobs = fieldwork::scheduler::Settings {
            window_days,
            feb29,
            ..fieldwork::scheduler::Settings::default()
        };
        let dispatch = fieldwork::push::outbox::DispatchSettings::default();
        let mut interval = tokio::time::interval(every);
        loop {
            interval.tick().await;
            let now = clock.now();
            match fieldwork::scheduler::tick(&db, now, jobs).await {
                Ok(r) if r != fieldwork::scheduler::TickReport::default() => tracing::info!(
                    created = r.created,
                    followed = r.followed,
                    notified = r.notified,
                    "scheduler pass"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "scheduler pass failed"),
            }
            // Drain what is due (a bounded number of batches per tick).
            for _ in 0..100 {
                match fieldwork::push::outbox::dispatch_pass(
                    &db,
                    &gateway,
                    &dispatch,
                    clock.as_ref(),
                )
                .await
                {
                    Ok(r) if r.leased > 0 => tracing::info!(
                        sent = r.sent,
                        retried = r.retried,
                        dead = r.dead,
                        "dispatch pass"
                    ),
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "dispatch pass failed");
                        break;
                    }
                }
            }
        }
    });
    Ok(())
}

fn prepare_data(
    db: &Db,
    demo_mode: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    let mut conn = db.get_sync().map_err(|e| anyhow::anyhow!("{e}"))?;
    if demo_mode {
        let size = demo::field::Size {
            customers_per_manager: 208,
        };
        let loaded = demo::load_with_field_work(&mut conn, now, size)
            .map_err(|e| anyhow::anyhow!("demo load failed: {e}"))?;
        match loaded {
            Some(n) => println!(
                "Demo data loaded ({n} customers). Log in with any of these (password {}):",
                demo::DEMO_PASSWORD
            ),
            None => println!(
                "The database is not empty: demo data was not loaded. Demo logins, if it holds the demo:"
            ),
        }
        println!(
            "  admin (admin, 总行) · L0001–L0004 (leaders, one per sub-branch) · M0001–M0024 (managers)"
        );
    } else if let Some(password) =
        demo::bootstrap_admin(&mut conn, fieldwork::startup::stored_now(&SystemClock))
            .map_err(|e| anyhow::anyhow!("bootstrap failed: {e}"))?
    {
        // Printed once to the terminal, never logged: the operator must change it at first login.
        println!(
            "Created the first admin: employee_no `admin`, temporary password `{password}` (shown once)."
        );
    }
    Ok(())
}
