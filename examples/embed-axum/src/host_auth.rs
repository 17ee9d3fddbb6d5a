//! The HOST'S OWN authentication, not the account domain's: a toy table of static bearer
//! tokens, each naming a host user. A real host verifies its sessions, cookies or OIDC tokens
//! here; nothing of it is ours, and our API keys do not open the host's routes.
//!
//! What connects a host user to the account domain is an account API key the host keeps for
//! them as a secret (issued for them when they joined the tenant). The host acts in the
//! account domain for the user only as the principal the spine verifies that key to
//! ([`HostUser::principal`]).

use crate::{HostError, HostState};
use account_spine::{Principal, RequestMeta, Spine, SpineError};
use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::http::request::Parts;
use std::collections::HashMap;
use std::fmt;

/// A user of the host, as the host's authentication found them.
#[derive(Clone)]
pub struct HostUser {
    /// The host's name for them.
    pub name: String,
    /// Their linked account API key (a secret: never logged, never sent to the client).
    account_key: String,
    /// The client's agent, carried into the account domain's audit rows.
    user_agent: Option<String>,
}

impl fmt::Debug for HostUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostUser")
            .field("name", &self.name)
            .field("account_key", &"<redacted>")
            .finish()
    }
}

impl HostUser {
    /// A host user linked to the account API key `account_key`.
    pub fn new(name: impl Into<String>, account_key: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            account_key: account_key.into(),
            user_agent: None,
        }
    }

    /// The account principal this user acts as: the spine verifies the linked key (its
    /// digest, expiry, revocation, the tenant's status) and answers with the tenant, key and
    /// permissions *it* stored for that key.
    ///
    /// This is the only way the host gets a [`Principal`]. It never builds one itself from
    /// its own data (a tenant id or a role from its request or its user table): that would
    /// let a host bug or a forged request act in any tenant, with any role, and skip
    /// revocation.
    pub async fn principal(&self, spine: &Spine) -> Result<Principal, SpineError> {
        let mut request = RequestMeta::default();
        if let Some(agent) = &self.user_agent {
            request = request.with_user_agent(agent.clone());
        }
        spine.authenticate_api_key(&self.account_key, request).await
    }
}

/// The host's users by their (toy) bearer token.
#[derive(Default)]
pub struct HostUsers {
    by_token: HashMap<String, HostUser>,
}

impl fmt::Debug for HostUsers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Tokens are secrets: only the names show.
        f.debug_list()
            .entries(self.by_token.values().map(|u| &u.name))
            .finish()
    }
}

impl HostUsers {
    /// No users.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same table with `user` signing in with `token`.
    pub fn with(mut self, token: impl Into<String>, user: HostUser) -> Self {
        self.by_token.insert(token.into(), user);
        self
    }
}

/// `Authorization: Bearer <host token>` on the host's routes.
impl FromRequestParts<HostState> for HostUser {
    type Rejection = HostError;

    async fn from_request_parts(parts: &mut Parts, host: &HostState) -> Result<Self, HostError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        let mut user = token
            .and_then(|token| host.users.by_token.get(token))
            .cloned()
            .ok_or(HostError::NotSignedIn)?;
        user.user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        Ok(user)
    }
}
