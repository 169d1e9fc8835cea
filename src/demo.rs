//! The demo city (Zhangjiagang 张家港): reference data shipped as files in `demo/`
//! and compiled into the binary, so `cargo run` is useful at once from any folder.

use serde::Deserialize;
use uuid::Uuid;

use crate::store::{CategoryPolicy, CategorySeed, ReferenceData, RuleRecord, UnitRecord};

const UNITS: &str = include_str!("../demo/units.toml");
const CATEGORIES: &str = include_str!("../demo/categories.toml");
const RULES: &str = include_str!("../demo/rules.toml");
const ZONES: &str = include_str!("../demo/zones.geojson");
const DEADLINE_PROFILES: &str = include_str!("../demo/deadline_profiles.toml");

#[derive(Deserialize)]
struct ProfilesFile {
    profile: Vec<crate::domain::deadline::DeadlineProfile>,
}

/// The demo city's deadline profiles (named by its categories and rules).
pub fn deadline_profiles() -> anyhow::Result<Vec<crate::domain::deadline::DeadlineProfile>> {
    Ok(toml::from_str::<ProfilesFile>(DEADLINE_PROFILES)?.profile)
}

#[derive(Debug, thiserror::Error)]
#[error("demo data {file}: {reason}")]
pub struct DemoError {
    file: &'static str,
    reason: String,
}

#[derive(Deserialize)]
struct UnitsFile {
    unit: Vec<UnitEntry>,
}

#[derive(Deserialize)]
struct UnitEntry {
    code: String,
    name: String,
    kind: String,
    parent: Option<String>,
    #[serde(default)]
    contacts: Vec<serde_json::Value>,
    active: bool,
}

#[derive(Deserialize)]
struct CategoriesFile {
    category: Vec<CategoryEntry>,
}

#[derive(Deserialize)]
struct CategoryEntry {
    code: String,
    parent: Option<String>,
    name_zh: String,
    name_en: String,
    national_code: Option<String>,
    service_code: Option<String>,
    default_urgency: String,
    requires_photo: bool,
    public: bool,
    deadline_profile: Option<String>,
    sort_order: i64,
    #[serde(default)]
    policy: CategoryPolicy,
}

#[derive(Deserialize)]
struct RulesFile {
    rule: Vec<RuleEntry>,
}

#[derive(Deserialize)]
struct RuleEntry {
    id: Uuid,
    category: String,
    zone: Option<String>,
    lead_unit: String,
    #[serde(default)]
    co_units: Vec<String>,
    deadline_profile: Option<String>,
    priority: i64,
    note: Option<String>,
}

fn toml_file<T: serde::de::DeserializeOwned>(
    file: &'static str,
    text: &str,
) -> Result<T, DemoError> {
    toml::from_str(text).map_err(|e| DemoError {
        file,
        reason: e.to_string(),
    })
}

/// Parses the shipped demo city.
pub fn reference_data() -> Result<ReferenceData, DemoError> {
    let units: UnitsFile = toml_file("units.toml", UNITS)?;
    let categories: CategoriesFile = toml_file("categories.toml", CATEGORIES)?;
    let rules: RulesFile = toml_file("rules.toml", RULES)?;
    let zones = crate::routing::parse_zone_collection(ZONES).map_err(|errors| DemoError {
        file: "zones.geojson",
        reason: errors
            .first()
            .map(|e| format!("feature {}: {}", e.index, e.reason))
            .unwrap_or_default(),
    })?;
    Ok(ReferenceData {
        units: units
            .unit
            .into_iter()
            .map(|u| UnitRecord {
                code: u.code,
                name: u.name,
                kind: u.kind,
                parent_code: u.parent,
                contacts: serde_json::Value::Array(u.contacts),
                active: u.active,
            })
            .collect(),
        categories: categories
            .category
            .into_iter()
            .map(|c| CategorySeed {
                code: c.code,
                parent_code: c.parent,
                name_zh: c.name_zh,
                name_en: c.name_en,
                national_code: c.national_code,
                service_code: c.service_code,
                default_urgency: c.default_urgency,
                requires_photo: c.requires_photo,
                public: c.public,
                deadline_profile: c.deadline_profile,
                sort_order: c.sort_order,
                active: true,
                policy: c.policy,
            })
            .collect(),
        zones,
        rules: rules
            .rule
            .into_iter()
            .map(|r| RuleRecord {
                id: r.id,
                version: 1,
                category_prefix: r.category,
                zone_code: r.zone,
                lead_unit: r.lead_unit,
                co_units: r.co_units,
                deadline_profile: r.deadline_profile,
                priority: r.priority,
                valid_from: None,
                valid_to: None,
                active: true,
                note: r.note,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::build_table;
    use crate::store::RoutingData;

    #[test]
    fn the_demo_city_parses_and_builds_a_routing_table() {
        let data = reference_data().unwrap();
        assert_eq!(data.zones.len(), 463);
        assert!(data.units.iter().any(|u| u.code == "DEPT-CGJ"));
        let table = build_table(&RoutingData {
            version: 1,
            zones: data.zones,
            rules: data.rules,
        })
        .unwrap();
        assert!(
            table.conflicts().is_empty(),
            "the demo rules are unambiguous"
        );
    }

    /// Seeding writes straight into the store, past the admin API's checks, so
    /// the demo's data is held to them here.
    #[test]
    fn the_demo_data_passes_the_admin_checks() {
        use crate::domain::code::{is_category_prefix, is_category_under, is_profile_prefix};
        let data = reference_data().unwrap();
        for category in &data.categories {
            assert!(
                is_category_under(&category.code, category.parent_code.as_deref()),
                "{}",
                category.code
            );
        }
        for rule in &data.rules {
            assert!(
                is_category_prefix(&rule.category_prefix),
                "{}",
                rule.category_prefix
            );
        }
        for profile in deadline_profiles().unwrap() {
            if let Some(prefix) = &profile.category_prefix {
                assert!(is_profile_prefix(prefix), "{}: {prefix}", profile.id);
            }
        }
    }

    #[derive(Deserialize)]
    struct Sample {
        lat: f64,
        lon: f64,
        category: String,
        expected_lead_unit: String,
    }

    #[test]
    fn the_demo_samples_route_as_documented() {
        let data = reference_data().unwrap();
        let table = build_table(&RoutingData {
            version: 1,
            zones: data.zones,
            rules: data.rules,
        })
        .unwrap();
        let samples: Vec<Sample> =
            serde_json::from_str(include_str!("../demo/samples.json")).unwrap();
        assert!(samples.len() >= 10);
        for s in samples {
            let p = crate::domain::geo::LatLon {
                lat: s.lat,
                lon: s.lon,
            };
            let decision = table.decide(p, &s.category, chrono::Utc::now());
            let lead = decision.winner.map(|w| w.lead_unit);
            assert_eq!(
                lead.as_deref(),
                Some(s.expected_lead_unit.as_str()),
                "{} at {:?}",
                s.category,
                p
            );
        }
    }
}

/// A staff account created with the demo city; the password is printed at start-up.
#[derive(Debug, Clone)]
pub struct DemoAccount {
    pub username: String,
    pub role: crate::domain::role::Role,
    pub unit: Option<String>,
    pub password: String,
}

const ACCOUNTS_FILE: &str = "demo-accounts.txt";

/// Seeds the demo city and one account per staff role into an empty database.
/// Returns the demo accounts — new ones, or those noted in the data folder when
/// the database was seeded before — so that start-up can print them.
pub async fn seed(
    repo: &dyn crate::store::Repository,
    data_dir: &std::path::Path,
) -> anyhow::Result<Vec<DemoAccount>> {
    use crate::domain::role::Role;
    use crate::store::{Actor, NewUser};

    // Most starts find the city already there: skip parsing and validating it.
    if !repo.units().await?.is_empty() {
        return Ok(read_accounts(&data_dir.join(ACCOUNTS_FILE)));
    }
    let data = reference_data()?;
    let now = crate::state::now();
    let actor = Actor {
        id: None,
        role: "system".into(),
    };
    if !repo.seed_reference_data(&data, &actor, now).await? {
        return Ok(read_accounts(&data_dir.join(ACCOUNTS_FILE)));
    }
    for profile in deadline_profiles()? {
        if repo.save_deadline_profile(&profile, &actor, now).await?
            == crate::store::ProfileSave::DefaultStays
        {
            anyhow::bail!("demo profile {} would move the default profile", profile.id);
        }
    }
    let plan = [
        ("demo-admin", Role::Admin, None),
        ("demo-operator", Role::Operator, None),
        ("demo-supervisor", Role::Supervisor, None),
        ("demo-inspector", Role::Inspector, None),
        ("demo-cgj-lead", Role::UnitLead, Some("DEPT-CGJ")),
        ("demo-cgj-staff", Role::UnitStaff, Some("DEPT-CGJ")),
        ("demo-power-staff", Role::UnitStaff, Some("ENT-POWER")),
        ("demo-yangshe-staff", Role::UnitStaff, Some("SO-320582001")),
    ];
    let mut accounts = Vec::new();
    for (username, role, unit) in plan {
        let password = crate::auth::RefreshTokens::generate()[..16].to_owned();
        let to_hash = password.clone();
        let hash = tokio::task::spawn_blocking(move || crate::auth::hash_password(&to_hash))
            .await?
            .map_err(anyhow::Error::msg)?;
        repo.create_user(&NewUser {
            id: Uuid::now_v7(),
            role,
            unit_id: unit.map(str::to_owned),
            username: Some(username.to_owned()),
            password_hash: Some(hash),
            phone: None,
            display_name: Some(format!("Demo {role}")),
            created_at: now,
        })
        .await?;
        accounts.push(DemoAccount {
            username: username.to_owned(),
            role,
            unit: unit.map(str::to_owned),
            password,
        });
    }
    write_accounts(&data_dir.join(ACCOUNTS_FILE), &accounts)?;
    Ok(accounts)
}

fn write_accounts(path: &std::path::Path, accounts: &[DemoAccount]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    writeln!(
        file,
        "# demo accounts: username role unit password (development only)"
    )?;
    for a in accounts {
        writeln!(
            file,
            "{} {} {} {}",
            a.username,
            a.role,
            a.unit.as_deref().unwrap_or("-"),
            a.password
        )?;
    }
    Ok(())
}

fn read_accounts(path: &std::path::Path) -> Vec<DemoAccount> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let (username, role, unit, password) =
                (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            Some(DemoAccount {
                username: username.to_owned(),
                role: crate::domain::role::Role::parse(role)?,
                unit: (unit != "-").then(|| unit.to_owned()),
                password: password.to_owned(),
            })
        })
        .collect()
}
