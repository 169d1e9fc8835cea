//! The `civicsnap` command: serve (default), migrate, openapi, seed-demo,
//! import-zones, calendar, token, user create.

use std::io::BufRead;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use uuid::Uuid;

use civicsnap::auth::{JwtKeys, check_username, hash_password, load_jwt_secret};
use civicsnap::config::{Settings, redact_url};
use civicsnap::domain::nul;
use civicsnap::domain::role::Role;
use civicsnap::startup::Application;
use civicsnap::state::now;
use civicsnap::store::{self, NewUser, Repository};

#[derive(Parser)]
#[command(
    name = "civicsnap",
    version,
    about = "Citizen snap-and-report (随手拍) backend"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the OpenAPI document (YAML).
    Openapi,
    /// Load the demo city (zones, units, categories, rules) and demo staff accounts
    /// into an empty database — the way to get it into PostgreSQL.
    SeedDemo,
    /// Import zones from a GeoJSON FeatureCollection (upsert by code, all or nothing).
    ImportZones {
        /// The .geojson file.
        file: std::path::PathBuf,
    },
    /// Working calendars (holidays and 调休 make-up days) deadlines count on.
    Calendar {
        #[command(subcommand)]
        command: CalendarCommand,
    },
    /// Mint an access token for local testing (dev mode only).
    Token {
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// User id; by default a `dev-<role>` account is created or reused.
        #[arg(long)]
        sub: Option<Uuid>,
        /// Unit of unit_staff / unit_lead.
        #[arg(long)]
        unit: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
    },
    /// Manage staff accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a staff account; the password is read from standard input.
    Create {
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        username: String,
        #[arg(long)]
        unit: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
    },
}

#[derive(Subcommand)]
enum CalendarCommand {
    /// Load or replace calendar years from a file: JSON (one year or an array,
    /// like calendars/cn-2026.json) or CSV (`jurisdiction,date,kind,name`).
    Import { file: std::path::PathBuf },
    /// List the loaded years.
    List,
}

/// The database the settings name, migrated, for a command.
async fn open_store(settings: &Settings) -> Result<Arc<dyn Repository>, store::StoreError> {
    store::connect(&settings.database_url, settings.database_connections).await
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| {
        let names: Vec<_> = Role::ALL.iter().map(|r| r.as_str()).collect();
        format!("unknown role {s:?}; one of {}", names.join(", "))
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    civicsnap::telemetry::init();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi => {
            print!("{}", civicsnap::http::openapi_yaml());
            Ok(())
        }
        Command::Serve => serve(Settings::load()?).await,
        Command::Migrate => {
            let settings = Settings::load()?;
            open_store(&settings).await?;
            println!(
                "migrations applied to {}",
                redact_url(&settings.database_url)
            );
            Ok(())
        }
        Command::ImportZones { file } => import_zones(Settings::load()?, &file).await,
        Command::SeedDemo => {
            let settings = Settings::load()?;
            let repo = open_store(&settings).await?;
            let accounts = civicsnap::demo::seed(repo.as_ref(), &settings.data_dir).await?;
            println!(
                "demo city loaded into {}",
                redact_url(&settings.database_url)
            );
            for a in accounts {
                let unit = a.unit.map(|u| format!(" of {u}")).unwrap_or_default();
                println!(
                    "  {} ({}{unit}) password {}",
                    a.username, a.role, a.password
                );
            }
            Ok(())
        }
        Command::Calendar {
            command: CalendarCommand::Import { file },
        } => import_calendar(Settings::load()?, &file).await,
        Command::Calendar {
            command: CalendarCommand::List,
        } => {
            let settings = Settings::load()?;
            let repo = open_store(&settings).await?;
            for stored in repo.calendar_years().await? {
                let y = stored.year;
                println!(
                    "{}/{}  version {}  {} holiday entries, {} make-up workdays  (loaded {})",
                    y.jurisdiction,
                    y.year,
                    y.version.as_deref().unwrap_or("-"),
                    y.holidays.len(),
                    y.workdays.len(),
                    stored.loaded_at
                );
            }
            Ok(())
        }
        Command::Token {
            role,
            sub,
            unit,
            ttl,
        } => token(Settings::load()?, role, sub, unit, ttl).await,
        Command::User {
            command:
                UserCommand::Create {
                    role,
                    username,
                    unit,
                    display_name,
                },
        } => create_user(Settings::load()?, role, username, unit, display_name).await,
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    tracing::info!(settings = ?settings, "starting");
    let dev_mode = settings.dev_mode;
    let host = settings.server.host.clone();
    let app = Application::build(settings).await?;
    let base = format!("http://{host}:{}", app.port());
    println!("civicsnap listening on {base}  (API description: {base}/api/v1/openapi.yaml)");
    if !app.demo_accounts().is_empty() {
        println!("Demo city 张家港 is loaded. Staff accounts (password grant, development only):");
        for account in app.demo_accounts() {
            let unit = account
                .unit
                .as_deref()
                .map(|u| format!(" of {u}"))
                .unwrap_or_default();
            println!(
                "  {:<20} {:<11}{unit:<18} password {}",
                account.username,
                account.role.as_str(),
                account.password
            );
        }
    }
    if dev_mode {
        println!(
            "Get a token:\n  \
             staff/testing: cargo run --release -- token --role operator\n  \
             citizen:       curl -X POST {base}/api/v1/auth/otp -H 'content-type: application/json' -d '{{\"phone\":\"13800000000\"}}'\n                 \
             (the code is printed in this log), then\n                 \
             curl -X POST {base}/api/v1/auth/token -H 'content-type: application/json' \
             -d '{{\"grant_type\":\"otp\",\"phone\":\"13800000000\",\"code\":\"<code>\"}}'"
        );
    }
    app.run_until_stopped().await?;
    Ok(())
}

async fn token(
    settings: Settings,
    role: Role,
    sub: Option<Uuid>,
    unit: Option<String>,
    ttl: i64,
) -> anyhow::Result<()> {
    if !settings.dev_mode {
        bail!(
            "`token` mints credentials without a password: it only works with dev_mode on, never in production"
        );
    }
    if role.is_unit_role() && unit.is_none() {
        bail!("{role} needs --unit");
    }
    let subject = match sub {
        Some(id) => id,
        None => {
            let repo = open_store(&settings).await?;
            let username = format!("dev-{role}");
            match repo.user_by_username(&username).await? {
                Some(user) => user.id,
                None => {
                    repo.create_user(&NewUser {
                        id: Uuid::now_v7(),
                        role,
                        unit_id: unit.clone(),
                        username: Some(username),
                        password_hash: None,
                        phone: None,
                        display_name: Some(format!("Development {role}")),
                        created_at: now(),
                    })
                    .await?
                    .id
                }
            }
        }
    };
    let secret = load_jwt_secret(&settings)?;
    let keys = JwtKeys::from_settings(&settings, &secret);
    println!("{}", keys.issue(subject, role, unit, now(), ttl)?);
    Ok(())
}

/// The new account's password: typed at the terminal without echo, or one line
/// of standard input when that is a pipe (scripts, provisioning).
fn read_password(username: &str) -> anyhow::Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(format!("password for {username}: "))
            .context("reading the password from the terminal");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

async fn create_user(
    settings: Settings,
    role: Role,
    username: String,
    unit: Option<String>,
    display_name: Option<String>,
) -> anyhow::Result<()> {
    if !role.uses_password() {
        bail!("citizens sign in by phone; create staff accounts only");
    }
    if role.is_unit_role() && unit.is_none() {
        bail!("{role} needs --unit");
    }
    check_username(&username).map_err(anyhow::Error::msg)?;
    let password = read_password(&username)?;
    if password.chars().count() < 10 {
        bail!("the password must have at least 10 characters");
    }
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await?
        .map_err(anyhow::Error::msg)?;
    let repo = open_store(&settings).await?;
    if let Some(unit) = &unit
        && !repo.units().await?.iter().any(|u| &u.code == unit)
    {
        bail!("there is no unit {unit:?}; create it first (POST /api/v1/admin/units)");
    }
    let user = repo
        .create_user(&NewUser {
            id: Uuid::now_v7(),
            role,
            unit_id: unit,
            username: Some(username.clone()),
            password_hash: Some(hash),
            phone: None,
            display_name,
            created_at: now(),
        })
        .await
        .map_err(|e| match e {
            store::StoreError::Conflict(_) => anyhow::anyhow!("username {username:?} is taken"),
            other => other.into(),
        })?;
    println!("created {role} {username} ({})", user.id);
    Ok(())
}

/// A file to import may not hold a NUL, as an upload may not: PostgreSQL
/// cannot store one, and SQLite would.
fn refuse_nul(text: &str, format: nul::Format) -> anyhow::Result<()> {
    if nul::holds_nul(text.as_bytes(), format) {
        anyhow::bail!("the file holds a NUL character (U+0000), which cannot be stored");
    }
    Ok(())
}

async fn import_calendar(settings: Settings, file: &std::path::Path) -> anyhow::Result<()> {
    use civicsnap::deadlines::{load_calendar_years, parse_calendar_file};
    use civicsnap::store::Actor;

    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let csv = file
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"));
    let format = if csv {
        nul::Format::Plain
    } else {
        nul::Format::Json
    };
    refuse_nul(&text, format)?;
    let years = parse_calendar_file(&text, csv).context("the calendar file is invalid")?;
    let repo = open_store(&settings).await?;
    let admin = Actor {
        id: None,
        role: "admin".into(),
    };
    load_calendar_years(repo.as_ref(), &years, &admin)
        .await
        .context("nothing was loaded")?;
    for y in &years {
        println!("loaded {}/{}", y.jurisdiction, y.year);
    }
    Ok(())
}

async fn import_zones(settings: Settings, file: &std::path::Path) -> anyhow::Result<()> {
    use civicsnap::routing::{parse_zone_collection_with_progress, table_after_import};
    use civicsnap::store::Actor;

    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    refuse_nul(&text, nul::Format::Json)?;
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("{msg:12} [{bar:40}] {pos}/{len} features")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message("checking");
    let zones = parse_zone_collection_with_progress(&text, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    let zones = match zones {
        Ok(zones) => zones,
        Err(errors) => {
            for e in &errors {
                eprintln!(
                    "feature {}{}: {}",
                    e.index,
                    e.key
                        .as_deref()
                        .map(|k| format!(" ({k})"))
                        .unwrap_or_default(),
                    e.reason
                );
            }
            bail!("{} feature(s) refused; nothing was imported", errors.len());
        }
    };
    let repo = open_store(&settings).await?;
    table_after_import(repo.routing_data().await?, &zones)
        .context("the import would leave the zones inconsistent; nothing was imported")?;
    let spinner = indicatif::ProgressBar::new_spinner()
        .with_message(format!("storing {} zones", zones.len()));
    spinner.enable_steady_tick(std::time::Duration::from_millis(100));
    let counts = repo
        .import_zones(
            &zones,
            &Actor {
                id: None,
                role: "admin".into(),
            },
            now(),
        )
        .await?;
    spinner.finish_and_clear();
    println!(
        "zones imported: {} created, {} updated",
        counts.created, counts.updated
    );
    Ok(())
}
