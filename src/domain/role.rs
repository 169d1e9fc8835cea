//! Who is acting. Each role gets the least it needs (DESIGN.md §3).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A member of the public, signed in by phone.
    Citizen,
    /// 监督员/网格员: field staff who report and check on site.
    Inspector,
    /// 受理/派遣/值班长 at the dispatch centre.
    Operator,
    /// 承办人 of one unit.
    UnitStaff,
    /// A unit's head; today the same rights as [`Role::UnitStaff`].
    UnitLead,
    /// 中心领导: second extensions, suspensions, cancellations.
    Supervisor,
    /// Configuration.
    Admin,
    /// A machine client such as the 12345 platform.
    Integrator,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::Citizen,
        Role::Inspector,
        Role::Operator,
        Role::UnitStaff,
        Role::UnitLead,
        Role::Supervisor,
        Role::Admin,
        Role::Integrator,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Citizen => "citizen",
            Role::Inspector => "inspector",
            Role::Operator => "operator",
            Role::UnitStaff => "unit_staff",
            Role::UnitLead => "unit_lead",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
            Role::Integrator => "integrator",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Staff of a responsible unit; their data is scoped to that unit.
    pub fn is_unit_role(self) -> bool {
        matches!(self, Role::UnitStaff | Role::UnitLead)
    }

    /// People working on cases (everyone but citizens and machines).
    pub fn is_staff(self) -> bool {
        !matches!(self, Role::Citizen | Role::Integrator)
    }

    /// Roles that sign in with a username and password.
    pub fn uses_password(self) -> bool {
        !matches!(self, Role::Citizen)
    }

    /// Roles that may file a report from the app.
    pub fn may_report(self) -> bool {
        matches!(self, Role::Citizen | Role::Inspector)
    }

    /// Roles that may upload photos (reports, and later proof of work).
    pub fn may_upload_photos(self) -> bool {
        matches!(
            self,
            Role::Citizen | Role::Inspector | Role::UnitStaff | Role::UnitLead
        )
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn permissions_table() {
        use Role::*;
        // (role, unit, staff, password, report, upload)
        let table = [
            (Citizen, false, false, false, true, true),
            (Inspector, false, true, true, true, true),
            (Operator, false, true, true, false, false),
            (UnitStaff, true, true, true, false, true),
            (UnitLead, true, true, true, false, true),
            (Supervisor, false, true, true, false, false),
            (Admin, false, true, true, false, false),
            (Integrator, false, false, true, false, false),
        ];
        for (role, unit, staff, password, report, upload) in table {
            assert_eq!(role.is_unit_role(), unit, "{role} unit");
            assert_eq!(role.is_staff(), staff, "{role} staff");
            assert_eq!(role.uses_password(), password, "{role} password");
            assert_eq!(role.may_report(), report, "{role} report");
            assert_eq!(role.may_upload_photos(), upload, "{role} upload");
        }
    }
}
