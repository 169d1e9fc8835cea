//! Persistence: one `Repository` trait of use-case methods, each owning its
//! transaction, implemented for SQLite and PostgreSQL from the same SQL (`sql.rs`).

mod batch;
mod bulk;
mod deadlines;
mod postgres;
mod records;
mod reference;
mod sql;
mod sqlite;
mod tracking;
mod workflow;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::clock::Clock;
use crate::domain::deadline::{CalendarError, CalendarYear, DeadlineProfile};
use crate::domain::phone::Phone;

pub use deadlines::{CalendarCheck, StoredCalendarYear};
pub use postgres::PostgresRepository;
pub use records::*;
pub use sqlite::SqliteRepository;
pub use workflow::{
    ApprovedReturn, AssignmentRecord, CaseChange, CaseCursor, CaseQuery, CaseSession, CaseSort,
    CaseSummary, CategoryPolicy, DISPATCH_CENTRE, NewEvent, OutboxEntry, SaveOutcome, SweepReport,
    WorkflowCase, WorkflowFields,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write (username taken, key reused…).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A write named a row that does not exist (a unit's parent, a rule's zone…).
    #[error("refers to something that does not exist: {0}")]
    MissingReference(String),
    /// Stored data that does not parse back (a bug or a hand edit).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(sqlx::Error),
    /// A shared writer failed; the cause was logged where it happened.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// The database could not be reached or stopped answering: the request was
    /// fine and may succeed later, unlike an error about the request or the data.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Database(err) => matches!(
                err,
                sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
            ),
            _ => false,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> StoreError {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.constraint().unwrap_or("unique").to_owned())
            }
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::MissingReference(db.constraint().unwrap_or("foreign key").to_owned())
            }
            _ => StoreError::Database(err),
        }
    }
}

/// Why a report could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum CreateReportError {
    #[error("unknown category {0:?}")]
    UnknownCategory(String),
    /// Not the caller's, already attached to a report, or gone.
    #[error("photo {0} is not available")]
    PhotoUnavailable(Uuid),
    /// A concurrent request with the same idempotency key won the race.
    #[error("request already processed")]
    AlreadyProcessed(StoredResponse),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CreateReportError {
    fn from(err: sqlx::Error) -> CreateReportError {
        CreateReportError::Store(err.into())
    }
}

/// Renders the response a report creation returns, so that it can be stored with
/// the idempotency key in the same transaction as the case.
pub type RenderReport = fn(&CaseRecord) -> String;

#[async_trait]
pub trait Repository: Send + Sync + 'static {
    /// `sqlite` or `postgres`, for logs and readiness.
    fn backend(&self) -> &'static str;

    /// Applies pending migrations.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// A cheap round trip for readiness probes.
    async fn ping(&self) -> Result<(), StoreError>;

    // --- accounts -------------------------------------------------------------

    /// Err(Conflict) when the username or phone is taken.
    async fn create_user(&self, user: &NewUser) -> Result<User, StoreError>;
    async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, StoreError>;
    async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError>;
    /// The citizen account of a phone, created on first sign-in.
    async fn citizen_for_phone(
        &self,
        phone: &Phone,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError>;

    // --- one-time codes -------------------------------------------------------

    /// Stores a new code for `phone` unless the last one was sent after
    /// `resend_cutoff`; returns whether it was stored.
    async fn put_otp(
        &self,
        phone: &Phone,
        code_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        resend_cutoff: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Counts one verification attempt and returns the code as it now stands.
    async fn count_otp_attempt(&self, phone: &Phone) -> Result<Option<OtpRecord>, StoreError>;
    async fn delete_otp(&self, phone: &Phone) -> Result<(), StoreError>;
    /// Deletes `phone`'s code only if it is still the one hashed `code_hash`:
    /// a code that could not be sent is withdrawn without touching a newer one,
    /// and a code is redeemed once. `true` when this call deleted it.
    async fn withdraw_otp(&self, phone: &Phone, code_hash: &str) -> Result<bool, StoreError>;
    /// The count of a request window, without counting this look.
    async fn client_requests(
        &self,
        client: &str,
        window_start: DateTime<Utc>,
    ) -> Result<i64, StoreError>;
    /// Counts one sign-in request (a code, or a token) from `client` in the
    /// window that started at `window_start`; returns the window's count, this
    /// request included. Kept in the database so that every instance counts
    /// against the same limit; the caller's key says what is counted.
    async fn count_client_request(
        &self,
        client: &str,
        window_start: DateTime<Utc>,
    ) -> Result<i64, StoreError>;
    /// Deletes what sign-in no longer needs: codes and refresh tokens expired
    /// before `now`, request windows that started before `windows_before`.
    /// Returns how many rows went.
    async fn purge_sign_in_records(
        &self,
        now: DateTime<Utc>,
        windows_before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
    /// Forgets the idempotency keys (and the first responses they keep) of
    /// reports filed before `created_before`; returns how many went.
    async fn purge_idempotency_keys(
        &self,
        created_before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    // --- refresh tokens -------------------------------------------------------

    async fn insert_refresh_token(&self, token: &NewRefreshToken) -> Result<(), StoreError>;
    /// Marks the presented token used and stores its successor in the same family.
    /// A token presented twice revokes its whole family (theft detection).
    async fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        next_hash: &str,
        next_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Rotation, StoreError>;

    // --- photos ---------------------------------------------------------------

    async fn insert_photo(&self, photo: &PhotoRecord) -> Result<(), StoreError>;
    async fn photo(&self, id: Uuid) -> Result<Option<PhotoRecord>, StoreError>;
    /// The report's own photos on the case (not the units' after-photos), in
    /// their order on the case.
    async fn report_photos(&self, case_id: Uuid) -> Result<Vec<PhotoRecord>, StoreError>;
    /// Those of `ids` that belong to `owner` and are not attached to a case yet.
    async fn unattached_photos_of(
        &self,
        owner: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<PhotoRecord>, StoreError>;
    /// Unattached photos uploaded before `cutoff`, oldest first.
    async fn stale_unattached_photos(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<PhotoRecord>, StoreError>;
    /// Deletes the row if still unattached, queueing its objects for deletion
    /// (as of `now`) in the same transaction; returns whether it did.
    async fn delete_unattached_photo(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Keys of deleted photos' objects not yet confirmed deleted, oldest first.
    async fn queued_object_deletions(&self, limit: i64) -> Result<Vec<String>, StoreError>;
    /// The store has deleted the object under `key` (or it can name none).
    async fn forget_object_deletion(&self, key: &str) -> Result<(), StoreError>;

    // --- categories -----------------------------------------------------------

    async fn categories(&self) -> Result<Vec<Category>, StoreError>;

    // --- reports --------------------------------------------------------------

    async fn idempotent_response(
        &self,
        user: Uuid,
        key: &str,
    ) -> Result<Option<StoredResponse>, StoreError>;
    /// One transaction: tracking number, case, photo attachment, first timeline
    /// event and, when given, the idempotency record with the rendered response.
    async fn create_report(
        &self,
        report: &NewReport,
        idempotency: Option<&IdempotencyClaim>,
        render: RenderReport,
    ) -> Result<CaseRecord, CreateReportError>;
    async fn case_by_id(&self, id: Uuid) -> Result<Option<CaseRecord>, StoreError>;
    /// A reporter's cases, newest first, strictly older than `before` when given.
    async fn reports_of(
        &self,
        reporter: Uuid,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<CaseRecord>, StoreError>;
    async fn case_events(&self, case_id: Uuid) -> Result<Vec<CaseEvent>, StoreError>;

    // --- routing reference data ---------------------------------------------------

    /// Bumped by every change to zones, units or rules.
    async fn routing_version(&self) -> Result<i64, StoreError>;
    /// Zones and current rules, read in one snapshot, with the version they reflect.
    async fn routing_data(&self) -> Result<RoutingData, StoreError>;
    /// Loads reference data into a database that has no units yet, in one
    /// transaction; returns false (and changes nothing) when units exist already.
    async fn seed_reference_data(
        &self,
        data: &ReferenceData,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    async fn units(&self) -> Result<Vec<UnitRecord>, StoreError>;
    /// Those of `codes` that name a deactivated unit.
    async fn inactive_units(&self, codes: &[&str]) -> Result<Vec<String>, StoreError>;

    // --- reference data administration: audited, and bumps the routing version ---

    /// Err(Conflict) when the code is taken.
    async fn create_unit(
        &self,
        unit: &UnitRecord,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Returns false when there is no such unit.
    async fn update_unit(
        &self,
        unit: &UnitRecord,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Refuses while cases, rules, staff or child units refer to it.
    async fn delete_unit(
        &self,
        code: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Deletion, StoreError>;
    /// Creates or updates a category by code.
    async fn save_category(
        &self,
        category: &CategorySeed,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn zone(&self, code: &str) -> Result<Option<ZoneRecord>, StoreError>;
    /// Upserts by code, all in one transaction.
    async fn import_zones(
        &self,
        zones: &[ZoneRecord],
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<ImportCounts, StoreError>;
    /// Every version of a rule, oldest first.
    async fn rule_versions(&self, id: Uuid) -> Result<Vec<RuleRecord>, StoreError>;
    /// Stores `rule` as its next version (1 for a new id) and makes it current.
    async fn save_rule(
        &self,
        rule: &RuleRecord,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<RuleRecord, StoreError>;
    /// Refuses while cases refer to it.
    async fn delete_rule(
        &self,
        id: Uuid,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Deletion, StoreError>;
    /// The latest reference-data changes, newest first.
    async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError>;

    // --- deadline profiles and working calendars (audited, bump the version) ------

    async fn deadline_profiles(&self) -> Result<Vec<DeadlineProfile>, StoreError>;
    /// Creates or replaces a profile by id; Err(Conflict) when another profile
    /// already covers the same category prefix and urgency. The default keeps
    /// its prefix and urgency, as it cannot be deleted either.
    async fn save_deadline_profile(
        &self,
        profile: &DeadlineProfile,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<ProfileSave, StoreError>;
    /// Refuses to delete the normal-urgency default.
    async fn delete_deadline_profile(
        &self,
        id: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Deletion, StoreError>;
    async fn calendar_years(&self) -> Result<Vec<StoredCalendarYear>, StoreError>;
    /// Loads or replaces whole years, in one transaction, if `check` passes on
    /// the years stored when that transaction begins. Loads are serialised, so
    /// two cannot each pass against the years from before the other (and leave
    /// a calendar that no longer builds).
    async fn save_calendar_years(
        &self,
        years: &[CalendarYear],
        actor: &Actor,
        now: DateTime<Utc>,
        check: &CalendarCheck<'_>,
    ) -> Result<Result<(), CalendarError>, StoreError>;

    // --- case workflow ------------------------------------------------------------

    /// Reads a case for an action; `None` when it does not exist.
    async fn open_case(&self, id: Uuid) -> Result<Option<CaseSession>, StoreError>;
    /// Saves a transition if the case is still at `change.expected_version`, on
    /// the connection `session` read it on when it still holds one.
    async fn save_case_change(
        &self,
        change: &CaseChange,
        session: CaseSession,
    ) -> Result<SaveOutcome, StoreError>;
    /// Every clock the case ever ran, oldest first.
    async fn case_clocks(&self, case_id: Uuid) -> Result<Vec<Clock>, StoreError>;
    /// The dispatch queue and unit inboxes.
    async fn list_cases(&self, query: &CaseQuery) -> Result<Vec<CaseSummary>, StoreError>;
    /// Submitted, routed cases of auto-dispatch categories not deferred past
    /// `now`, oldest first.
    async fn auto_dispatch_candidates(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Uuid>, StoreError>;
    /// Leaves these cases, if still submitted, out of automatic dispatch until
    /// `until`, unless reference data moved past `seen_version` meanwhile (the
    /// change may be what they need); returns how many were set aside.
    async fn defer_auto_dispatch(
        &self,
        ids: &[Uuid],
        until: DateTime<Utc>,
        seen_version: i64,
    ) -> Result<u64, StoreError>;
    /// Cases closed before `closed_before`, oldest closing first.
    async fn archive_candidates(
        &self,
        closed_before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Uuid>, StoreError>;
    /// Records the warning/overdue/escalation events of up to `limit` due clocks.
    async fn sweep_clocks(&self, now: DateTime<Utc>, limit: i64)
    -> Result<SweepReport, StoreError>;
    /// A lease that lets one instance at a time run a job where the database
    /// cannot skip locked rows (SQLite); PostgreSQL grants it to everyone.
    async fn take_job_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<bool, StoreError>;
    /// Approved returns, newest first, with the rule that routed each case.
    async fn approved_returns(&self, limit: i64) -> Result<Vec<ApprovedReturn>, StoreError>;
    /// Outbox rows after `after` (an outbox id), oldest first. Not a delivery
    /// cursor: on PostgreSQL ids are taken at insert and transactions commit in
    /// any order, so a row may appear below an id already read. Delivery must
    /// claim undelivered rows (`delivered_at IS NULL`, the `outbox_pending`
    /// index) instead.
    async fn outbox(&self, after: i64, limit: i64) -> Result<Vec<OutboxEntry>, StoreError>;
}

/// Opens the backend the URL names and applies migrations. `postgres_connections`
/// caps a PostgreSQL pool; SQLite sizes its own.
pub async fn connect(
    database_url: &str,
    postgres_connections: u32,
) -> Result<Arc<dyn Repository>, StoreError> {
    let repository: Arc<dyn Repository> = if database_url.starts_with("sqlite:") {
        Arc::new(SqliteRepository::connect(database_url).await?)
    } else {
        Arc::new(PostgresRepository::connect(database_url, postgres_connections).await?)
    };
    repository.migrate().await?;
    Ok(repository)
}
