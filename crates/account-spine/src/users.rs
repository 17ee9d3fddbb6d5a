//! User use cases: the acting member's own profile, and erasure ([`erasure`]).

pub mod erasure;

use crate::database::Spine;
use crate::error::SpineError;
use crate::operations::Operation;
use crate::principal::Principal;
use crate::use_case::{Change, Context, Sealed, UseCase};
use account_engines::users;

pub use account_engines::users::{Profile, ProfileUpdate, UserAccount};

/// The acting member's profile in the tenant.
#[derive(Clone, Copy, Debug, Default)]
pub struct GetProfile;

impl Sealed for GetProfile {}
impl UseCase for GetProfile {
    type Output = Profile;
    const OPERATION: Operation = Operation::AccountGetProfile;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Profile, SpineError> {
        Ok(users::get_profile(cx.db, cx.tenant()?, cx.member()?.user_id).await?)
    }
}

/// Updates the acting member's profile.
#[derive(Clone, Debug)]
pub struct UpdateProfile {
    /// What to change.
    pub update: ProfileUpdate,
}

impl Sealed for UpdateProfile {}
impl UseCase for UpdateProfile {
    type Output = UserAccount;
    const OPERATION: Operation = Operation::AccountUpdateProfile;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<UserAccount, SpineError> {
        let (tenant, user) = (cx.tenant()?, cx.member()?.user_id);
        let account =
            users::update_profile(cx.db, tenant, user, self.update.clone(), cx.now).await?;
        let after = users::changed_fields(&self.update, &account);
        cx.audit(Change::of("user", user).after(after)).await?;
        Ok(account)
    }
}

impl Spine {
    /// Executes [`GetProfile`].
    pub async fn get_profile(&self, principal: &Principal) -> Result<Profile, SpineError> {
        self.execute(principal, GetProfile).await
    }

    /// Executes [`UpdateProfile`].
    pub async fn update_profile(
        &self,
        principal: &Principal,
        update: ProfileUpdate,
    ) -> Result<UserAccount, SpineError> {
        self.execute(principal, UpdateProfile { update }).await
    }
}
