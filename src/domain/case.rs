//! Case states of the 数字城管 / 12345 closed loop (DESIGN.md §3).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    /// 待受理: received from any channel.
    Submitted,
    /// 待核实: an inspector is checking a public report on site.
    Verifying,
    /// 待派遣: accepted (立案).
    Filed,
    /// 待签收: assigned to a lead unit.
    Dispatched,
    /// 处置中: the lead unit signed for it.
    InProgress,
    /// 挂账: approved pause; clocks stop.
    Suspended,
    /// 待核查: reported fixed.
    AwaitingCheck,
    /// 已结案 (销号).
    Closed,
    /// 归档.
    Archived,
    /// 不予立案.
    NotFiled,
    /// 作废.
    Cancelled,
}

impl CaseState {
    pub const ALL: [CaseState; 11] = [
        CaseState::Submitted,
        CaseState::Verifying,
        CaseState::Filed,
        CaseState::Dispatched,
        CaseState::InProgress,
        CaseState::Suspended,
        CaseState::AwaitingCheck,
        CaseState::Closed,
        CaseState::Archived,
        CaseState::NotFiled,
        CaseState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::Submitted => "submitted",
            CaseState::Verifying => "verifying",
            CaseState::Filed => "filed",
            CaseState::Dispatched => "dispatched",
            CaseState::InProgress => "in_progress",
            CaseState::Suspended => "suspended",
            CaseState::AwaitingCheck => "awaiting_check",
            CaseState::Closed => "closed",
            CaseState::Archived => "archived",
            CaseState::NotFiled => "not_filed",
            CaseState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<CaseState> {
        CaseState::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for state in CaseState::ALL {
            assert_eq!(CaseState::parse(state.as_str()), Some(state));
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{}\"", state.as_str())
            );
        }
        assert_eq!(CaseState::parse("open"), None);
    }
}
