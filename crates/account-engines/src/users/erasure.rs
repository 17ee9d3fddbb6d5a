//! A user's erasure: their personal data removed or replaced by a stable pseudonym
//! everywhere it is stored, their history kept and still linked.
//!
//! The pseudonym is `erased-user-` and 16 hex digits of HMAC-SHA256 over the user's id, keyed
//! by a key the pepper derives for this purpose alone ([`PSEUDONYM_PURPOSE`]): the same user
//! always gets the same one (so their audit rows, rewritten at different places, agree), and
//! without the pepper nobody can tell which id it stands for. Where an email must stay an
//! address (the user row, invitations) it is [`pseudonym_email`], under the reserved
//! `.invalid` domain, which never delivers.
//!
//! The work, in the caller's one transaction ([`begin`], then the caller removes the
//! memberships, then [`complete`]): refuse the last owner of any tenant (ownership first goes
//! to someone, or the project is deleted), record the erasure, tombstone the user row (status
//! `deleted`, every personal column emptied, the id kept), drop the identity links, revoke
//! pending invitations to the address, empty the client address and user agent of the audit
//! rows they acted in, and rewrite every text the drivers list
//! (`account_drivers::users::erasure::SCRUBBED`) with the [`Scrubber`]: the email replaced
//! wherever it appears, the name replaced in the user's own rows and in rows that also held
//! the email.

use super::UserError;
use crate::Db;
use crate::api_keys::ApiKeyPepper;
use account_drivers::types::{MembershipRole, TenantId, UserId, UserStatus};
use account_drivers::users::erasure::{self as driver, Needles, SCRUBBED};
use account_drivers::{get_accounts_facade_driver, get_tenant_driver, get_user_write_driver};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value as Json;
use sha2::Sha256;

pub use account_drivers::users::erasure::{ErasureSnapshot, RequestedBy, Rewrite};

/// The HKDF purpose of the pseudonyms' key.
pub const PSEUDONYM_PURPOSE: &str = "account/user-pseudonyms/v1";

/// The domain of pseudonymous addresses (RFC 2606: reserved, never delivers).
pub const PSEUDONYM_DOMAIN: &str = "erased.invalid";

/// `user`'s pseudonym under `pepper`: `erased-user-<16 hex digits>`, the same every time.
pub fn pseudonym(pepper: &ApiKeyPepper, user: UserId) -> Result<String, UserError> {
    let key = pepper
        .derive_key(PSEUDONYM_PURPOSE)
        .map_err(|_| UserError::PseudonymKey)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_ref()).map_err(|_| UserError::PseudonymKey)?;
    mac.update(user.as_uuid().as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("erased-user-{hex}"))
}

/// The address standing for a pseudonym where an email must stay one.
pub fn pseudonym_email(pseudonym: &str) -> String {
    format!("{pseudonym}@{PSEUDONYM_DOMAIN}")
}

/// Replaces a person's email and name in stored text and JSON.
#[derive(Clone, Debug)]
pub struct Scrubber {
    email: String,
    name: Option<String>,
    pseudonym: String,
    pseudonym_email: String,
}

impl Scrubber {
    /// A scrubber replacing `email` (any case) by the pseudonym's address and `name` by the
    /// pseudonym.
    pub fn new(email: &str, name: Option<&str>, pseudonym: &str) -> Self {
        Self {
            email: email.trim().to_owned(),
            name: name
                .map(|name| name.trim().to_owned())
                .filter(|name| !name.is_empty()),
            pseudonym: pseudonym.to_owned(),
            pseudonym_email: pseudonym_email(pseudonym),
        }
    }

    /// `text` with the email replaced, and the name too when `linked` (the row is the
    /// person's own, or also held their email). One pass over the original text, so a
    /// replacement is never matched again.
    pub fn scrub(&self, text: &str, linked: bool) -> String {
        let mut found: Vec<(usize, usize, &str)> = matches(text, &self.email, email_edge)
            .into_iter()
            .map(|(start, end)| (start, end, self.pseudonym_email.as_str()))
            .collect();
        if let (true, Some(name)) = (linked, &self.name) {
            for (start, end) in matches(text, name, word_edge) {
                if !found.iter().any(|&(s, e, _)| start < e && s < end) {
                    found.push((start, end, self.pseudonym.as_str()));
                }
            }
        }
        if found.is_empty() {
            return text.to_owned();
        }
        found.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end, with) in found {
            out.push_str(&text[at..start]);
            out.push_str(with);
            at = end;
        }
        out.push_str(&text[at..]);
        out
    }

    /// `value` with every string (and object key) scrubbed.
    pub fn scrub_json(&self, value: &Json, linked: bool) -> Json {
        match value {
            Json::String(text) => Json::String(self.scrub(text, linked)),
            Json::Array(items) => Json::Array(
                items
                    .iter()
                    .map(|item| self.scrub_json(item, linked))
                    .collect(),
            ),
            Json::Object(fields) => Json::Object(
                fields
                    .iter()
                    .map(|(k, v)| (self.scrub(k, linked), self.scrub_json(v, linked)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

impl Rewrite for Scrubber {
    fn text(&self, value: &str, linked: bool) -> Option<String> {
        let scrubbed = self.scrub(value, linked);
        (scrubbed != value).then_some(scrubbed)
    }

    fn json(&self, value: &Json, linked: bool) -> Option<Json> {
        let scrubbed = self.scrub_json(value, linked);
        (&scrubbed != value).then_some(scrubbed)
    }
}

/// Where `needle` occurs in `text` ignoring case (byte ranges of `text`), where `edge` accepts
/// the characters around it. Case is folded only where lower-casing keeps every byte offset
/// (otherwise the match is exact).
fn matches(
    text: &str,
    needle: &str,
    edge: fn(Option<char>, Option<char>, Option<char>) -> bool,
) -> Vec<(usize, usize)> {
    if needle.is_empty() {
        return Vec::new();
    }
    let (lower_text, lower_needle) = (text.to_lowercase(), needle.to_lowercase());
    let (hay, needle) = if lower_text.len() == text.len() && lower_needle.len() == needle.len() {
        (lower_text.as_str(), lower_needle.as_str())
    } else {
        (text, needle)
    };
    hay.match_indices(needle)
        .map(|(start, found)| (start, start + found.len()))
        .filter(|&(start, end)| {
            let before = text[..start].chars().next_back();
            let mut after = text[end..].chars();
            edge(before, after.next(), after.next())
        })
        .collect()
}

/// An address is whole: no address character before it, and none after it (a full stop
/// after it ends a sentence unless more of a domain follows).
fn email_edge(before: Option<char>, after: Option<char>, then: Option<char>) -> bool {
    let local = |c: char| c.is_alphanumeric() || "._%+-".contains(c);
    let domain = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    let more_domain = after == Some('.') && then.is_some_and(char::is_alphanumeric);
    !(before.is_some_and(local) || after.is_some_and(domain) || more_domain)
}

/// A name is whole words: no letter or digit right before or after it.
fn word_edge(before: Option<char>, after: Option<char>, _: Option<char>) -> bool {
    !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
}

/// An erasure begun: who, their pseudonym, what they were, and where they were a member.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ErasureStarted {
    /// The user.
    pub user_id: UserId,
    /// Their pseudonym.
    pub pseudonym: String,
    /// Their tenants and roles, by tenant id (the order their rows are locked in).
    pub memberships: Vec<(TenantId, MembershipRole)>,
    scrubber: Scrubber,
    needles: Needles,
    email: String,
}

/// What an erasure changed, by table: rows rewritten, deleted or revoked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErasureCounts {
    /// Identity links deleted.
    pub identity_links: u64,
    /// Pending invitations to the address revoked.
    pub invitations_revoked: u64,
    /// Audit rows whose client address and user agent were emptied.
    pub audit_requests: u64,
    /// Idempotency keys of the person deleted.
    pub idempotency_keys: u64,
    /// Rows rewritten per table ([`account_drivers::users::erasure::SCRUBBED`] order; tables
    /// with none left out).
    pub rewritten: Vec<(&'static str, u64)>,
}

/// Starts erasing `user`: refuses an unknown or already erased user and the last owner of any
/// tenant (every such tenant named; its row locked, in id order, so racing role changes wait),
/// then records the erasure, which opens the audit guard's erasure path for this transaction.
pub async fn begin(
    db: Db<'_>,
    pepper: &ApiKeyPepper,
    user: UserId,
    requested_by: RequestedBy,
    now: DateTime<Utc>,
) -> Result<ErasureStarted, UserError> {
    let account = get_user_write_driver(db)
        .fetch_user_by_id(user)
        .await?
        .ok_or(UserError::NotFound)?;
    if account.status == UserStatus::Deleted || driver::fetch_erasure(db, user).await?.is_some() {
        return Err(UserError::AlreadyErased);
    }
    let facade = get_accounts_facade_driver(db);
    let mut memberships: Vec<(TenantId, MembershipRole)> = facade
        .fetch_user_memberships(user)
        .await?
        .into_iter()
        .map(|(tenant, role, _)| (tenant, role))
        .collect();
    memberships.sort_by_key(|(tenant, _)| tenant.as_uuid());
    let mut sole_owner = Vec::new();
    for &(tenant, _) in &memberships {
        get_tenant_driver(db).lock_tenant(tenant).await?;
        // The role as it stands under the lock, not as read before it.
        let role = facade.fetch_membership(tenant, user).await?.map(|m| m.role);
        // A deleted project is on its way to the purge (and only a signed-in owner could
        // restore it): it does not hold its last owner back.
        if role == Some(MembershipRole::Owner)
            && facade.count_owners(tenant).await? <= 1
            && account_drivers::projects::fetch_deletion(db, tenant)
                .await?
                .is_none()
        {
            sole_owner.push(tenant);
        }
    }
    if !sole_owner.is_empty() {
        return Err(UserError::LastOwnerOf {
            tenants: sole_owner,
        });
    }
    let pseudonym = pseudonym(pepper, user)?;
    if !driver::begin_erasure(db, user, &pseudonym, requested_by, now).await? {
        return Err(UserError::AlreadyErased);
    }
    Ok(ErasureStarted {
        user_id: user,
        scrubber: Scrubber::new(&account.email, account.name.as_deref(), &pseudonym),
        needles: Needles::new(user, &account.email, account.name.as_deref()),
        email: account.email,
        pseudonym,
        memberships,
    })
}

/// Finishes an erasure [`begin`] started, once the caller removed the memberships: the
/// tombstone, the links, the invitations, the audit rows' requests, the idempotency keys in
/// `tenants`, every listed text; then records it complete.
pub async fn complete(
    db: Db<'_>,
    started: &ErasureStarted,
    tenants: &[TenantId],
    now: DateTime<Utc>,
) -> Result<ErasureCounts, UserError> {
    let user = started.user_id;
    let mut counts = ErasureCounts::default();
    if !driver::tombstone_user(db, user, &pseudonym_email(&started.pseudonym), now).await? {
        return Err(UserError::AlreadyErased);
    }
    counts.identity_links = driver::delete_identity_links(db, user).await?;
    counts.invitations_revoked = driver::revoke_invitations_to(db, &started.email, now).await?;
    counts.audit_requests = driver::forget_audit_requests(db, user).await?;
    let credential = format!("user:{user}");
    for &tenant in tenants {
        counts.idempotency_keys += driver::delete_idempotency_keys(db, tenant, &credential).await?;
    }
    for target in SCRUBBED {
        let rewritten =
            driver::scrub_table(db, target, &started.needles, &started.scrubber).await?;
        if rewritten > 0 {
            counts.rewritten.push((target.table, rewritten));
        }
    }
    driver::complete_erasure(db, user, now).await?;
    Ok(counts)
}

/// `user`'s erasure as recorded, if they were erased.
pub async fn find_erasure(db: Db<'_>, user: UserId) -> Result<Option<ErasureSnapshot>, UserError> {
    Ok(driver::fetch_erasure(db, user).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scrubber() -> Scrubber {
        Scrubber::new("ada@example.com", Some("Ada Lovelace"), "erased-user-00")
    }

    #[test]
    fn the_email_goes_everywhere_and_the_name_only_from_linked_rows() {
        let s = scrubber();
        let text = "Ada Lovelace <ADA@example.com>. Write to ada@example.com.";
        assert_eq!(
            s.scrub(text, false),
            "Ada Lovelace <erased-user-00@erased.invalid>. Write to erased-user-00@erased.invalid."
        );
        assert_eq!(
            s.scrub(text, true),
            "erased-user-00 <erased-user-00@erased.invalid>. Write to erased-user-00@erased.invalid."
        );
    }

    #[test]
    fn only_whole_addresses_and_whole_words_are_replaced() {
        let s = scrubber();
        for kept in [
            "sada@example.com",
            "ada@example.community",
            "ada@example.com.au",
            "Ada Lovelaces",
            "xAda Lovelace",
        ] {
            assert_eq!(s.scrub(kept, true), kept, "{kept}");
        }
        assert_eq!(
            s.scrub("(ada lovelace)", true),
            "(erased-user-00)",
            "case is ignored"
        );
    }

    #[test]
    fn json_strings_and_keys_are_scrubbed_and_nothing_else() {
        let s = scrubber();
        let value = json!({"email": "ada@example.com", "name": "Ada Lovelace", "n": 3,
                           "to": ["ada@example.com"], "ada@example.com": true});
        let scrubbed = s.json(&value, true).expect("changed");
        assert_eq!(
            scrubbed,
            json!({"email": "erased-user-00@erased.invalid", "name": "erased-user-00", "n": 3,
                   "to": ["erased-user-00@erased.invalid"], "erased-user-00@erased.invalid": true})
        );
        assert_eq!(s.json(&json!({"n": 1}), true), None);
    }

    #[test]
    fn a_name_inside_the_email_or_the_pseudonym_is_not_replaced_twice() {
        let s = Scrubber::new("user@example.com", Some("user"), "erased-user-00");
        assert_eq!(
            s.scrub("user wrote from user@example.com", true),
            "erased-user-00 wrote from erased-user-00@erased.invalid"
        );
    }

    #[test]
    fn pseudonyms_are_stable_per_user_and_keyed() {
        let pepper = ApiKeyPepper::from_bytes(&[7u8; 32]).unwrap();
        let other = ApiKeyPepper::from_bytes(&[8u8; 32]).unwrap();
        let user = UserId::new();
        let p = pseudonym(&pepper, user).unwrap();
        assert_eq!(p, pseudonym(&pepper, user).unwrap());
        assert_ne!(p, pseudonym(&pepper, UserId::new()).unwrap());
        assert_ne!(p, pseudonym(&other, user).unwrap());
        assert!(p.starts_with("erased-user-") && p.len() == "erased-user-".len() + 16);
    }
}
