//! The `civicsnap` command as an operator runs it: a fresh data directory, the
//! settings in `CIVICSNAP_*` variables of that process only.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use civicsnap::auth::verify_password;
use civicsnap::domain::role::Role;

struct Deployment {
    dir: tempfile::TempDir,
}

impl Deployment {
    fn new() -> Deployment {
        Deployment {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn database_url(&self) -> String {
        format!(
            "sqlite://{}",
            self.dir.path().join("civicsnap.db").display()
        )
    }

    /// Runs `civicsnap args…` with `stdin` on standard input.
    fn run(&self, dev_mode: bool, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_civicsnap"))
            .args(args)
            .current_dir(self.dir.path())
            .env("CIVICSNAP_DATA_DIR", self.dir.path())
            .env("CIVICSNAP_DATABASE_URL", self.database_url())
            .env("CIVICSNAP_DEV_MODE", dev_mode.to_string())
            // Production settings must name their signing secret.
            .env(
                "CIVICSNAP_AUTH__JWT_SECRET",
                "a-test-deployment-secret-of-enough-length",
            )
            .env("RUST_LOG", "warn")
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("stdin written");
        child.wait_with_output().expect("the binary finishes")
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn token_refuses_without_dev_mode_and_mints_with_it() {
    let deployment = Deployment::new();
    let refused = deployment.run(false, &["token", "--role", "admin"], "");
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("dev_mode"),
        "{}",
        stderr(&refused)
    );
    assert!(refused.stdout.is_empty(), "no token printed");

    let minted = deployment.run(true, &["token", "--role", "operator"], "");
    assert!(minted.status.success(), "{}", stderr(&minted));
    let token = String::from_utf8_lossy(&minted.stdout);
    assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");
}

#[tokio::test]
async fn user_create_reads_the_password_from_stdin_and_stores_only_its_hash() {
    let deployment = Deployment::new();
    let password = "correct horse battery";
    let created = deployment.run(
        false,
        &[
            "user",
            "create",
            "--role",
            "admin",
            "--username",
            "ops-admin",
        ],
        &format!("{password}\n"),
    );
    assert!(created.status.success(), "{}", stderr(&created));
    assert!(!String::from_utf8_lossy(&created.stdout).contains(password));

    let connections = civicsnap::config::Settings::default().database_connections;
    let repo = civicsnap::store::connect(&deployment.database_url(), connections)
        .await
        .expect("the database the command made");
    let user = repo
        .user_by_username("ops-admin")
        .await
        .expect("read")
        .expect("created");
    assert_eq!(user.role, Role::Admin);
    let hash = user.password_hash.as_deref();
    assert!(hash.is_some_and(|h| !h.contains(password)));
    assert!(verify_password(password, hash));

    // Each refused account: its role, username and password, and what the
    // command says about it.
    for (role, username, password, says) in [
        ("admin", "weak", "short", "at least 10 characters"),
        ("unit_staff", "nobody", password, "--unit"),
        ("admin", "ops admin", password, "no spaces"),
    ] {
        let refused = deployment.run(
            false,
            &["user", "create", "--role", role, "--username", username],
            &format!("{password}\n"),
        );
        assert!(!refused.status.success(), "{username}");
        assert!(stderr(&refused).contains(says), "{}", stderr(&refused));
    }
}

#[test]
fn calendar_import_loads_a_year_and_openapi_prints_the_committed_document() {
    let deployment = Deployment::new();
    let migrated = deployment.run(false, &["migrate"], "");
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    let csv = deployment.dir.path().join("cn-2027.csv");
    std::fs::write(
        &csv,
        "jurisdiction,date,kind,name\n# version: 2027-test\nCN,2027-01-01,holiday,元旦\n",
    )
    .expect("csv written");
    let imported = deployment.run(
        false,
        &["calendar", "import", csv.to_str().expect("utf-8 path")],
        "",
    );
    assert!(imported.status.success(), "{}", stderr(&imported));
    let listed = deployment.run(false, &["calendar", "list"], "");
    assert!(listed.status.success(), "{}", stderr(&listed));
    // Imported before the service ever started: it joins the shipped years.
    let list = String::from_utf8_lossy(&listed.stdout);
    let years: Vec<&str> = list
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert_eq!(years, ["CN/2025", "CN/2026", "CN/2027"], "{list}");

    let printed = deployment.run(false, &["openapi"], "");
    assert!(printed.status.success());
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .expect("openapi.yaml");
    assert_eq!(String::from_utf8_lossy(&printed.stdout), committed);
}

/// The CLI's imports refuse a NUL as the uploads do: SQLite would store it.
#[test]
fn import_zones_refuses_a_nul_as_the_upload_does() {
    let deployment = Deployment::new();
    let migrated = deployment.run(false, &["migrate"], "");
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    let file = deployment.dir.path().join("zones.geojson");
    std::fs::write(
        &file,
        r#"{"type":"FeatureCollection","features":[{"type":"Feature",
        "properties":{"code":"ZNUL1","name":"bad\u0000name","kind":"community"},
        "geometry":{"type":"Polygon","coordinates":[[[120.30,31.80],[120.31,31.80],[120.31,31.81],[120.30,31.80]]]}}]}"#,
    )
    .expect("geojson written");
    let imported = deployment.run(
        false,
        &["import-zones", file.to_str().expect("utf-8 path")],
        "",
    );
    assert!(
        !imported.status.success(),
        "a zone name with a NUL was imported: {}",
        String::from_utf8_lossy(&imported.stdout)
    );
    assert!(stderr(&imported).contains("NUL"), "{}", stderr(&imported));
}
