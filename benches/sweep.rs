//! The deadline sweep among many open cases: one sweep that finds 1,000 due
//! clocks and records what they owe (a warning; an overdue notice and its
//! escalation; or all three), with 100k and 1M open cases, to show its cost does
//! not grow with them.
//!
//! cargo bench --bench sweep                        # SQLite (temp file)
//! BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench --bench sweep                    # PostgreSQL (fresh databases)
//! BENCH_OPEN_CASES=100000,1000000 picks the sizes (the default).
//!
//! The open cases are written with plain SQL (a fixture, not the service's code
//! path): one unit, and per case an in-progress row, its lead assignment and a
//! running handle clock due next month. The first 1,000 clocks are made due
//! before every measured sweep.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use civicsnap::state::now;
use civicsnap::store::{self, Repository};
use criterion::{Criterion, criterion_group, criterion_main};
use sqlx::{AssertSqlSafe, Connection};

const DUE: usize = 1_000;

fn sizes() -> Vec<usize> {
    std::env::var("BENCH_OPEN_CASES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100_000, 1_000_000])
}

/// Ids of the fixture: fixed-width, so text order is numeric order.
fn id_sql(dialect: Dialect, prefix: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("printf('00000000-0000-7000-{prefix}-%012x', n)"),
        Dialect::Postgres => {
            format!("'00000000-0000-7000-{prefix}-' || lpad(to_hex(n), 12, '0')")
        }
    }
}

#[derive(Clone, Copy)]
enum Dialect {
    Sqlite,
    Postgres,
}

/// The statements that write `open` cases, each with a lead assignment and a
/// running clock; `$1` is the start time, `$2` the due time.
fn seed_statements(dialect: Dialect, open: usize) -> Vec<String> {
    let series = match dialect {
        Dialect::Sqlite => format!(
            "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {open}) "
        ),
        Dialect::Postgres => String::new(),
    };
    let from = match dialect {
        Dialect::Sqlite => "FROM s".to_owned(),
        Dialect::Postgres => format!("FROM generate_series(1, {open}) AS s(n)"),
    };
    let case_id = id_sql(dialect, "8000");
    let clock_id = id_sql(dialect, "9000");
    let tracking = match dialect {
        Dialect::Sqlite => "printf('BENCH-%09d', n)".to_owned(),
        Dialect::Postgres => "'BENCH-' || lpad(n::text, 9, '0')".to_owned(),
    };
    vec![
        "INSERT INTO units (code, name, kind, parent_code, created_at, updated_at) \
         VALUES ('BENCH-PARENT', 'bench parent', 'department', NULL, $1, $1), \
                ('BENCH-UNIT', 'bench unit', 'department', 'BENCH-PARENT', $1, $1)"
            .to_owned(),
        "INSERT INTO users (id, role, created_at) VALUES ('00000000-0000-7000-8000-ffffffffffff', 'citizen', $1)"
            .to_owned(),
        format!(
            "{series}INSERT INTO cases (id, tracking_no, state, source, category_code, lat, lon, description, \
             reporter_id, created_at, updated_at, lead_unit, due_at) \
             SELECT {case_id}, {tracking}, 'in_progress', 'app', '0101', 31.87, 120.55, 'bench', \
             '00000000-0000-7000-8000-ffffffffffff', $1, $1, 'BENCH-UNIT', $2 {from}"
        ),
        format!(
            "{series}INSERT INTO case_assignments (case_id, unit_code, lead, assigned_at, signed_at) \
             SELECT {case_id}, 'BENCH-UNIT', TRUE, $1, $1 {from}"
        ),
        format!(
            "{series}INSERT INTO case_clocks (id, case_id, phase, unit_code, limit_amount, limit_unit, started_at, \
             due_at, warning_at, status, pauses, calendar_version, inputs, next_check_at) \
             SELECT {clock_id}, {case_id}, 'handle', NULL, 3, 'work_days', $1, $2, $2, 'running', '[]', \
             'bench', '{{}}', $2 {from}"
        ),
    ]
}

/// What the due clocks owe: a warning (one event each), the overdue notice after
/// an earlier warning (overdue + escalation), or both at once (a sweeper that was
/// down through the warning time).
#[derive(Clone, Copy)]
enum Owed {
    Warning,
    Overdue,
    Both,
}

impl Owed {
    fn name(self) -> &'static str {
        match self {
            Owed::Warning => "warning",
            Owed::Overdue => "overdue",
            Owed::Both => "warning_and_overdue",
        }
    }

    fn events(self) -> usize {
        match self {
            Owed::Warning => 1,
            Owed::Overdue => 2,
            Owed::Both => 3,
        }
    }
}

/// Makes the first `DUE` clocks due again; `$1` is a moment ago, `$2` next month.
fn reset_sql(owed: Owed) -> String {
    let last = format!("00000000-0000-7000-9000-{DUE:012x}");
    let set = match owed {
        Owed::Warning => {
            "warned_at = NULL, overdue_at = NULL, warning_at = $1, due_at = $2, next_check_at = $1"
        }
        Owed::Overdue => {
            "warned_at = $1, overdue_at = NULL, warning_at = $1, due_at = $1, next_check_at = $1"
        }
        Owed::Both => {
            "warned_at = NULL, overdue_at = NULL, warning_at = $1, due_at = $1, next_check_at = $1"
        }
    };
    format!("UPDATE case_clocks SET {set} WHERE id <= '{last}'")
}

/// Runs fixture statements on one connection of either backend.
macro_rules! run_all {
    ($conn:expr, $statements:expr, $($bind:expr),*) => {
        for statement in $statements {
            sqlx::query(AssertSqlSafe(statement))
                $(.bind($bind))*
                .execute(&mut $conn)
                .await
                .expect("fixture statement");
        }
    };
}

struct Fixture {
    repo: std::sync::Arc<dyn Repository>,
    url: String,
    dialect: Dialect,
    _dir: Option<tempfile::TempDir>,
    /// The server and the database made for this size, dropped when done.
    server_database: Option<(String, String)>,
}

impl Fixture {
    /// A million-case database is ~1 GB; it is not left on the server.
    async fn remove(self) {
        let Some((server, name)) = self.server_database else {
            return;
        };
        drop(self.repo);
        let mut admin = sqlx::PgConnection::connect(&server).await.expect("connect");
        sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .expect("drop");
    }
}

async fn fixture(open: usize) -> Fixture {
    let (url, dialect, dir, server_database) = match std::env::var("BENCH_DATABASE_URL") {
        Ok(server) => {
            let name = format!("civicsnap_bench_sweep_{open}");
            let mut admin = sqlx::PgConnection::connect(&server).await.expect("connect");
            sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
                .execute(&mut admin)
                .await
                .expect("drop");
            sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut admin)
                .await
                .expect("create");
            // Same server and options (sslmode…), another database.
            let (base, rest) = server.rsplit_once('/').expect("URL ends with /database");
            let options = rest.find('?').map_or("", |at| &rest[at..]);
            let url = format!("{base}/{name}{options}");
            (url, Dialect::Postgres, None, Some((server, name)))
        }
        Err(_) => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("sweep.db").display());
            (url, Dialect::Sqlite, Some(dir), None)
        }
    };
    let connections = civicsnap::config::Settings::default().database_connections;
    let repo = store::connect(&url, connections)
        .await
        .expect("store opens and migrates");
    let started = Instant::now();
    let start = now();
    let due = start + chrono::Duration::days(30);
    match dialect {
        Dialect::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&url)
                .await
                .expect("connect");
            run_all!(conn, seed_statements(dialect, open), start, due);
            run_all!(conn, ["ANALYZE".to_owned()],);
        }
        Dialect::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
            run_all!(conn, seed_statements(dialect, open), start, due);
            run_all!(conn, ["ANALYZE".to_owned()],);
        }
    }
    eprintln!(
        "seeded {open} open cases in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Fixture {
        repo,
        url,
        dialect,
        _dir: dir,
        server_database,
    }
}

async fn reset(fixture: &Fixture, owed: Owed, at: DateTime<Utc>) {
    let sql = reset_sql(owed);
    let later = at + chrono::Duration::days(30);
    match fixture.dialect {
        Dialect::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&fixture.url)
                .await
                .expect("connect");
            run_all!(conn, [sql], at, later);
        }
        Dialect::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&fixture.url)
                .await
                .expect("connect");
            run_all!(conn, [sql], at, later);
            // Every reset and sweep leaves 2,000 dead clock versions whose entries
            // sit at the front of the partial index the claim walks. A server's
            // autovacuum prunes them as they pile up; on a server with autovacuum
            // off, as some CI servers are, the benchmark would otherwise measure
            // sweeps over a million dead entries (11–16 ms to find nothing due).
            run_all!(conn, ["VACUUM case_clocks".to_owned()],);
        }
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut group = c.benchmark_group("sweep");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for open in sizes() {
        let fixture = runtime.block_on(fixture(open));
        let backend = fixture.repo.backend();
        for owed in [Owed::Warning, Owed::Overdue, Owed::Both] {
            let name = format!("{backend}/{open}_open/{DUE}_due_{}", owed.name());
            group.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let at = now();
                        runtime.block_on(reset(&fixture, owed, at - chrono::Duration::seconds(1)));
                        let started = Instant::now();
                        let report = runtime
                            .block_on(fixture.repo.sweep_clocks(at, DUE as i64))
                            .expect("sweep");
                        total += started.elapsed();
                        assert_eq!(report.clocks, DUE, "the sweep found every due clock");
                        let events = report.warnings + 2 * report.overdue;
                        assert_eq!(events, DUE * owed.events());
                    }
                    total
                })
            });
        }
        group.bench_function(format!("{backend}/{open}_open/none_due"), |b| {
            b.iter(|| {
                let report = runtime
                    .block_on(fixture.repo.sweep_clocks(now(), DUE as i64))
                    .expect("sweep");
                assert_eq!(report.clocks, 0);
            })
        });
        runtime.block_on(fixture.remove());
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
