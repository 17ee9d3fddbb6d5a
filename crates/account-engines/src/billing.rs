//! Billing: the summary and invoices from stored data, and the writes the billing
//! integration makes (subscription changes and invoices, idempotent by external id).
//!
//! Every derived figure of the summary comes from stored rows: the billing period, the
//! current period and the next invoice date from the subscription, usage from the usage
//! records and the tenant's counters. Nothing is a stand-in constant.

use crate::PageRequest;
use crate::runs::usage_period;
use crate::{Db, DriverError, ErrorCode, OffsetPage, Page, StorageError};
use account_drivers::billing::InvoiceSnapshot;
use account_drivers::billing::SubscriptionSnapshot;
pub use account_drivers::billing::{InvoiceSnapshot as Invoice, InvoiceUpsert};
pub use account_drivers::billing::{SubscriptionSnapshot as Subscription, SubscriptionUpsert};
use account_drivers::tenants::TenantCoreSnapshot;
use account_drivers::types::{
    BillingPeriod, InvoiceId, SubscriptionId, SubscriptionStatus, TenantId,
};
pub use account_drivers::usage::MeterTotal;
use account_drivers::{get_accounts_facade_driver, get_tenant_driver};
use chrono::{DateTime, Months, NaiveTime, TimeDelta, Utc};

pub mod trials;

/// Longest external id, in characters (`external_id varchar(100)`).
pub const MAX_EXTERNAL_ID_CHARS: usize = 100;
/// Longest invoice number, in characters (`invoices.number varchar(64)`).
pub const MAX_INVOICE_NUMBER_CHARS: usize = 64;
/// Longest hosted invoice URL, in characters (`invoices.hosted_url varchar(500)`).
pub const MAX_HOSTED_URL_CHARS: usize = 500;
/// Longest subscription period the summary sums usage over (an annual period, leap year).
const MAX_USAGE_WINDOW_DAYS: i64 = 366;
/// How many invoices the summary carries.
const RECENT_INVOICES: u64 = 5;

/// Why a billing operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BillingError {
    /// No such tenant.
    #[error("tenant not found")]
    TenantNotFound,
    /// The external id is empty or longer than 100 characters.
    #[error("external id must be 1 to {MAX_EXTERNAL_ID_CHARS} characters")]
    InvalidExternalId,
    /// The invoice number is blank or longer than 64 characters.
    #[error("invoice number must be 1 to {MAX_INVOICE_NUMBER_CHARS} characters")]
    InvalidInvoiceNumber,
    /// The hosted URL is not an http(s) URL of at most 500 characters.
    #[error(
        "hosted URL must be an http:// or https:// URL of at most {MAX_HOSTED_URL_CHARS} characters without spaces"
    )]
    InvalidHostedUrl,
    /// The currency is not a three-letter code.
    #[error("currency must be a three-letter ISO 4217 code")]
    InvalidCurrency,
    /// Amounts are negative, or a period ends before it starts.
    #[error("{0}")]
    InvalidAmounts(&'static str),
    /// The page asked for is out of bounds.
    #[error("limit must be 1 to 100")]
    InvalidPage,
    /// A trial's end is not in the future, or more than a year ahead.
    #[error(
        "trial_ends_at must be in the future and at most {} days ahead",
        trials::MAX_TRIAL_DAYS
    )]
    InvalidTrialEnd,
    /// The grace is not 0 to 90 days.
    #[error("grace_days must be 0 to {}", trials::MAX_GRACE_DAYS)]
    InvalidGraceDays,
    /// A trial was asked for a subscription that exists and is no longer a trial.
    #[error("the subscription with this external id exists and is not a trial")]
    NotATrial,
    /// A report said `grace`: only the trial pass puts a subscription in grace.
    #[error("status grace is set by the trial pass, not reported")]
    GraceReported,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DriverError> for BillingError {
    fn from(error: DriverError) -> Self {
        match error {
            // The only foreign key of `subscriptions` and `invoices` is the tenant's.
            DriverError::ForeignKey { .. } => Self::TenantNotFound,
            error => Self::Storage(error.into()),
        }
    }
}

impl From<crate::InvalidPage> for BillingError {
    fn from(_: crate::InvalidPage) -> Self {
        Self::InvalidPage
    }
}

impl ErrorCode for BillingError {
    fn code(&self) -> &'static str {
        match self {
            Self::TenantNotFound => "tenant_not_found",
            Self::InvalidExternalId => "invalid_external_id",
            Self::InvalidInvoiceNumber => "invalid_invoice_number",
            Self::InvalidHostedUrl => "invalid_hosted_url",
            Self::InvalidCurrency => "invalid_currency",
            Self::InvalidAmounts(_) => "invalid_amounts",
            Self::InvalidPage => "invalid_page",
            Self::InvalidTrialEnd => "invalid_trial_end",
            Self::InvalidGraceDays => "invalid_grace_days",
            Self::NotATrial => "subscription_not_trialing",
            Self::GraceReported => "invalid_subscription_status",
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::TenantNotFound => 404,
            Self::InvalidExternalId
            | Self::InvalidInvoiceNumber
            | Self::InvalidHostedUrl
            | Self::InvalidCurrency
            | Self::InvalidAmounts(_)
            | Self::InvalidPage
            | Self::InvalidTrialEnd
            | Self::InvalidGraceDays
            | Self::GraceReported => 422,
            Self::NotATrial => 409,
            Self::Storage(e) => e.http_status(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidPage => Some("limit"),
            Self::InvalidTrialEnd => Some("trial_ends_at"),
            Self::InvalidGraceDays => Some("grace_days"),
            Self::NotATrial => Some("external_id"),
            Self::GraceReported => Some("status"),
            _ => None,
        }
    }
}

/// The tenant's counters as they stand at a given time: a counter whose stored day or
/// month is not the current one counts zero (counters reset lazily, on the next write).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CurrentUsage {
    /// Runs admitted today (UTC).
    pub runs_today: i32,
    /// Runs admitted this calendar month (UTC).
    pub runs_this_month: i32,
    /// Tokens used this calendar month (UTC).
    pub tokens_this_month: i64,
    /// Tokens reserved by runs queued or running (their declared estimates): the monthly
    /// quota admits a run only while used plus reserved plus its estimate fits.
    pub tokens_reserved: i64,
    /// Runs queued or running now (against `max_concurrent_runs`).
    pub active_runs: i32,
    /// Workers with runs queued or running now (against `max_workers`).
    pub active_workers: i32,
}

/// Reads the tenant's counters as of `now`.
pub fn current_usage(tenant: &TenantCoreSnapshot, now: DateTime<Utc>) -> CurrentUsage {
    let period = usage_period(now);
    let this_month = tenant.usage_month == Some(period.month);
    CurrentUsage {
        runs_today: if tenant.usage_day == Some(period.day) {
            tenant.runs_today
        } else {
            0
        },
        runs_this_month: if this_month {
            tenant.runs_this_month
        } else {
            0
        },
        tokens_this_month: if this_month {
            tenant.tokens_this_month
        } else {
            0
        },
        tokens_reserved: tenant.tokens_reserved,
        active_runs: tenant.active_runs,
        active_workers: tenant.active_workers,
    }
}

/// Where the usage window of a summary comes from (serialised `subscription` or
/// `calendar_month`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum UsageWindowSource {
    /// The subscription's current period, which contains now.
    Subscription,
    /// The calendar month (UTC) of now: there is no subscription, or its stored period does
    /// not contain now (the billing system has not reported the new one yet).
    CalendarMonth,
}

/// The half-open window `[start, end)` usage is summed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UsageWindow {
    /// First instant.
    pub start: DateTime<Utc>,
    /// First instant after.
    pub end: DateTime<Utc>,
    /// Where it comes from.
    pub source: UsageWindowSource,
}

/// The billing summary: plan and quotas, usage this period, subscription, latest invoices.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BillingSummary {
    /// The tenant's plan, quotas and counters.
    pub tenant: TenantCoreSnapshot,
    /// The current subscription, if the billing system reported one.
    pub subscription: Option<SubscriptionSnapshot>,
    /// The five most recent invoices.
    pub recent_invoices: Vec<InvoiceSnapshot>,
    /// How often the subscription bills; `None` without a subscription.
    pub billing_period: Option<BillingPeriod>,
    /// When the next invoice is due to be issued: the end of the trial while trialing,
    /// otherwise the end of the current period; `None` when the subscription is cancelled
    /// or ends with the period, when there is none, or when its period is already over.
    pub next_invoice_date: Option<DateTime<Utc>>,
    /// The window `usage` covers.
    pub usage_window: UsageWindow,
    /// Usage per meter over `usage_window`, summed by the database from the usage records.
    pub usage: Vec<MeterTotal>,
    /// The tenant's counters as of now.
    pub counters: CurrentUsage,
}

/// The calendar month (UTC) containing `now`, as a half-open window.
fn calendar_month(now: DateTime<Utc>) -> UsageWindow {
    let month = usage_period(now).month;
    let start = month.and_time(NaiveTime::MIN).and_utc();
    let end = month
        .checked_add_months(Months::new(1))
        .map_or(now + TimeDelta::days(31), |d| {
            d.and_time(NaiveTime::MIN).and_utc()
        });
    UsageWindow {
        start,
        end,
        source: UsageWindowSource::CalendarMonth,
    }
}

/// The subscription's current period when it contains `now` (and is at most a leap year
/// long), else the calendar month of `now`.
pub fn usage_window(
    subscription: Option<&SubscriptionSnapshot>,
    now: DateTime<Utc>,
) -> UsageWindow {
    if let Some(sub) = subscription
        && let (Some(start), Some(end)) = (sub.current_period_start, sub.current_period_end)
        && start <= now
        && now < end
        && end - start <= TimeDelta::days(MAX_USAGE_WINDOW_DAYS)
    {
        return UsageWindow {
            start,
            end,
            source: UsageWindowSource::Subscription,
        };
    }
    calendar_month(now)
}

/// When the subscription's next invoice is issued (see [`BillingSummary::next_invoice_date`]).
pub fn next_invoice_date(
    subscription: &SubscriptionSnapshot,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if subscription.status == SubscriptionStatus::Canceled || subscription.cancel_at_period_end {
        return None;
    }
    if subscription.status == SubscriptionStatus::Trialing
        && let Some(trial_end) = subscription.trial_ends_at
        && trial_end > now
    {
        return Some(trial_end);
    }
    subscription.current_period_end.filter(|end| *end > now)
}

/// Assembles the summary from stored data as of `now` (no stand-in values).
pub async fn get_billing_summary(
    db: Db<'_>,
    tenant: TenantId,
    now: DateTime<Utc>,
) -> Result<BillingSummary, BillingError> {
    let tenants = get_tenant_driver(db);
    let snapshot = tenants
        .fetch_tenant_snapshot(tenant)
        .await?
        .ok_or(BillingError::TenantNotFound)?;
    let facade = get_accounts_facade_driver(db);
    let subscription = facade.fetch_subscription(tenant).await?;
    let recent_invoices = facade
        .fetch_invoices(
            tenant,
            OffsetPage {
                limit: RECENT_INVOICES,
                offset: 0,
            },
        )
        .await?
        .items;
    let window = usage_window(subscription.as_ref(), now);
    let usage = tenants
        .summarize_usage(tenant, window.start, window.end)
        .await?;
    Ok(BillingSummary {
        counters: current_usage(&snapshot, now),
        billing_period: subscription.as_ref().map(|s| s.billing_period),
        next_invoice_date: subscription
            .as_ref()
            .and_then(|s| next_invoice_date(s, now)),
        usage_window: window,
        usage,
        tenant: snapshot,
        subscription,
        recent_invoices,
    })
}

/// The tenant's invoices, newest first.
pub async fn get_billing_invoices(
    db: Db<'_>,
    tenant: TenantId,
    page: OffsetPage,
) -> Result<Page<InvoiceSnapshot>, BillingError> {
    let page = PageRequest::new(page)?.into_page();
    Ok(get_accounts_facade_driver(db)
        .fetch_invoices(tenant, page)
        .await?)
}

fn check_external_id(id: &str) -> Result<(), BillingError> {
    if id.trim().is_empty() || id.chars().count() > MAX_EXTERNAL_ID_CHARS {
        return Err(BillingError::InvalidExternalId);
    }
    Ok(())
}

fn check_number(number: Option<&str>) -> Result<(), BillingError> {
    match number {
        Some(n)
            if n.trim().is_empty()
                || n.chars().count() > MAX_INVOICE_NUMBER_CHARS
                || n.chars().any(char::is_control) =>
        {
            Err(BillingError::InvalidInvoiceNumber)
        }
        _ => Ok(()),
    }
}

fn check_hosted_url(url: Option<&str>) -> Result<(), BillingError> {
    let Some(url) = url else { return Ok(()) };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let valid = rest.is_some_and(|rest| !rest.is_empty())
        && url.chars().count() <= MAX_HOSTED_URL_CHARS
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(())
    } else {
        Err(BillingError::InvalidHostedUrl)
    }
}

/// Refuses writes for a tenant that does not exist, before the statement that would trip
/// the foreign key (on PostgreSQL a failed statement spoils the caller's transaction).
async fn ensure_tenant(db: Db<'_>, tenant: TenantId) -> Result<(), BillingError> {
    get_tenant_driver(db)
        .fetch_tenant_by_id(tenant)
        .await?
        .map(|_| ())
        .ok_or(BillingError::TenantNotFound)
}

/// Records the subscription as the billing system reports it (replays are no-ops).
pub async fn record_subscription(
    db: Db<'_>,
    mut change: SubscriptionUpsert,
    now: DateTime<Utc>,
) -> Result<SubscriptionSnapshot, BillingError> {
    check_external_id(&change.external_id)?;
    if change.status == SubscriptionStatus::Grace {
        return Err(BillingError::GraceReported);
    }
    if let (Some(start), Some(end)) = (change.current_period_start, change.current_period_end)
        && end <= start
    {
        return Err(BillingError::InvalidAmounts(
            "the period must end after it starts",
        ));
    }
    ensure_tenant(db, change.tenant_id).await?;
    change.id = SubscriptionId::new();
    Ok(get_accounts_facade_driver(db)
        .upsert_subscription(change, now)
        .await?)
}

/// Records an invoice as the billing system reports it (replays are no-ops).
pub async fn record_invoice(
    db: Db<'_>,
    mut invoice: InvoiceUpsert,
    now: DateTime<Utc>,
) -> Result<InvoiceSnapshot, BillingError> {
    check_external_id(&invoice.external_id)?;
    check_number(invoice.number.as_deref())?;
    check_hosted_url(invoice.hosted_url.as_deref())?;
    if invoice.currency.len() != 3 || !invoice.currency.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(BillingError::InvalidCurrency);
    }
    invoice.currency = invoice.currency.to_ascii_lowercase();
    if invoice.amount_due_cents < 0 || invoice.amount_paid_cents < 0 {
        return Err(BillingError::InvalidAmounts("amounts must not be negative"));
    }
    if invoice.period_end <= invoice.period_start {
        return Err(BillingError::InvalidAmounts(
            "the billed period must end after it starts",
        ));
    }
    ensure_tenant(db, invoice.tenant_id).await?;
    invoice.id = InvoiceId::new();
    Ok(get_accounts_facade_driver(db)
        .upsert_invoice(invoice, now)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use account_drivers::types::PlanCode;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
    }

    fn subscription(status: SubscriptionStatus) -> SubscriptionSnapshot {
        let mut subscription = SubscriptionSnapshot::sample();
        subscription.external_id = "sub_1".into();
        subscription.plan = PlanCode::pro();
        subscription.status = status;
        subscription.billing_period = BillingPeriod::Monthly;
        subscription.current_period_start = Some(at(2026, 11, 10));
        subscription.current_period_end = Some(at(2026, 12, 10));
        subscription.created_at = at(2026, 1, 1);
        subscription.updated_at = at(2026, 1, 1);
        subscription
    }

    #[test]
    fn the_usage_window_is_the_subscription_period_or_the_calendar_month() {
        let sub = subscription(SubscriptionStatus::Active);
        let window = usage_window(Some(&sub), at(2026, 11, 25));
        assert_eq!(window.source, UsageWindowSource::Subscription);
        assert_eq!(
            (window.start, window.end),
            (at(2026, 11, 10), at(2026, 12, 10))
        );

        let stale = usage_window(Some(&sub), at(2026, 12, 20));
        assert_eq!(stale.source, UsageWindowSource::CalendarMonth);
        let none = usage_window(None, at(2026, 12, 20));
        assert_eq!(none, stale);
        assert_eq!(
            none.start,
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(none.end, Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
    }

    #[test]
    fn the_next_invoice_follows_status_trial_and_period() {
        let now = at(2026, 11, 25);
        assert_eq!(
            next_invoice_date(&subscription(SubscriptionStatus::Active), now),
            Some(at(2026, 12, 10))
        );
        assert_eq!(
            next_invoice_date(&subscription(SubscriptionStatus::Canceled), now),
            None
        );
        let mut ending = subscription(SubscriptionStatus::Active);
        ending.cancel_at_period_end = true;
        assert_eq!(next_invoice_date(&ending, now), None);
        let mut trial = subscription(SubscriptionStatus::Trialing);
        trial.trial_ends_at = Some(at(2026, 11, 30));
        assert_eq!(next_invoice_date(&trial, now), Some(at(2026, 11, 30)));
        assert_eq!(
            next_invoice_date(&subscription(SubscriptionStatus::Active), at(2027, 1, 1)),
            None,
            "a period that is over says nothing about the next invoice"
        );
    }

    #[test]
    fn counters_of_a_past_day_or_month_count_zero() {
        let now = at(2026, 11, 25);
        let tenant = TenantCoreSnapshot {
            id: TenantId::new(),
            name: "t".into(),
            slug: "t".into(),
            status: account_drivers::types::TenantStatus::Active,
            plan: PlanCode::pro(),
            plan_version: 1,
            warn_at_percent: Some(80),
            quotas: account_drivers::types::PlanQuotas::built_in(&PlanCode::pro()).unwrap(),
            runs_today: 3,
            runs_this_month: 7,
            tokens_this_month: 900,
            usage_day: Some(now.date_naive() - TimeDelta::days(1)),
            usage_month: Some(usage_period(now).month),
            last_run_reset_at: None,
            suspended_reason: None,
            onboarding_state: account_drivers::types::OnboardingState::Created,
            created_at: now,
            updated_at: now,
            tokens_reserved: 40,
            active_runs: 2,
            active_workers: 1,
        };
        assert_eq!(
            current_usage(&tenant, now),
            CurrentUsage {
                runs_today: 0,
                runs_this_month: 7,
                tokens_this_month: 900,
                // What is in flight now belongs to no period.
                tokens_reserved: 40,
                active_runs: 2,
                active_workers: 1,
            }
        );
        let next_month = at(2026, 12, 1);
        assert_eq!(current_usage(&tenant, next_month).tokens_this_month, 0);
    }

    #[test]
    fn invoice_texts_fit_their_columns() {
        assert!(check_number(Some(&"9".repeat(MAX_INVOICE_NUMBER_CHARS))).is_ok());
        assert!(check_number(Some(&"9".repeat(MAX_INVOICE_NUMBER_CHARS + 1))).is_err());
        assert!(check_number(Some("  ")).is_err());
        assert!(check_number(None).is_ok());
        let long = format!("https://x.test/{}", "a".repeat(MAX_HOSTED_URL_CHARS));
        assert!(matches!(
            check_hosted_url(Some(&long)),
            Err(BillingError::InvalidHostedUrl)
        ));
        assert!(check_hosted_url(Some("https://pay.example.com/i/1")).is_ok());
        assert!(check_hosted_url(Some("javascript:alert(1)")).is_err());
        assert!(check_hosted_url(Some("https://a b")).is_err());
    }
}
