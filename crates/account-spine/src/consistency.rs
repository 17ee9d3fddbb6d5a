//! Read-your-writes across instances: consistency tokens.
//!
//! With read replicas, an instance remembers each principal's last commit position in its own
//! memory, so the principal's next read on that instance goes to a replica that has replayed
//! it (see `replicas`). Behind a load balancer the next read may land on another instance,
//! which knows nothing of that write. A [`ConsistencyToken`] carries the position to it: the
//! host hands [`Spine::consistency_token`] to its client after a request (the HTTP API sends
//! it in the `Consistency-Token` response header), the client sends it back
//! ([`RequestMeta::read_after`](crate::RequestMeta::read_after); the request header of the
//! same name), and the instance reading then skips every replica that has not replayed it.
//! Nothing is shared between instances and no statement is added: the token is the state.

use crate::database::Spine;
use crate::principal::{OperatorPrincipal, Principal};
use crate::replicas::Reader;
use account_engines::replicas::WalPosition;
use std::fmt;
use std::str::FromStr;

/// What a client has seen: reads made with it see at least every write the client had been
/// told of when it got the token. Opaque to clients (its text is `wal:` and the primary's
/// log position today; the prefix lets the form change without misreading old tokens).
///
/// A token from the future (forged, or of another database) only sends its holder's reads to
/// the primary: it can slow no one else down, and it grants nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConsistencyToken(pub(crate) WalPosition);

/// A `Consistency-Token` that is not one this crate issued.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a consistency token (expected what a response's Consistency-Token said)")]
#[non_exhaustive]
pub struct InvalidConsistencyToken;

const PREFIX: &str = "wal:";

impl FromStr for ConsistencyToken {
    type Err = InvalidConsistencyToken;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let position = text
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(InvalidConsistencyToken)?;
        position
            .parse()
            .map(Self)
            .map_err(|_| InvalidConsistencyToken)
    }
}

impl fmt::Display for ConsistencyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.0)
    }
}

impl Spine {
    /// Whether read use cases may run on replicas: only then do tokens matter.
    pub fn reads_from_replicas(&self) -> bool {
        self.replicas.is_some()
    }

    /// The token to give `principal`'s client after its request: the later of the token it
    /// sent and its last write through this instance (still relevant). `None` without read
    /// replicas (every read is on the primary, nothing to wait for) or when neither is
    /// known. Call it after the request's use cases returned; no statement.
    pub fn consistency_token(&self, principal: &Principal) -> Option<ConsistencyToken> {
        self.token_for(
            Reader::of_principal(principal),
            principal.request.read_after,
        )
    }

    /// [`Spine::consistency_token`] for an operator.
    pub fn operator_consistency_token(
        &self,
        operator: &OperatorPrincipal,
    ) -> Option<ConsistencyToken> {
        self.token_for(
            Some(Reader::Operator(operator.operator_id.clone())),
            operator.request.read_after,
        )
    }

    fn token_for(
        &self,
        reader: Option<Reader>,
        sent: Option<ConsistencyToken>,
    ) -> Option<ConsistencyToken> {
        let replicas = self.replicas.as_deref()?;
        let written = replicas.position_of(reader.as_ref()).map(ConsistencyToken);
        written.max(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_reads_back_what_it_wrote_and_nothing_else() {
        let token = ConsistencyToken(WalPosition(0x1_0000_00AB));
        assert_eq!(token.to_string(), "wal:1/AB");
        assert_eq!("wal:1/AB".parse(), Ok(token));
        assert_eq!(" wal:1/AB ".parse(), Ok(token));
        for bad in [
            "",
            "1/AB",
            "wal:",
            "wal:1",
            "wal:x/1",
            "lsn:1/AB",
            "wal:1/AB/2",
        ] {
            assert_eq!(
                bad.parse::<ConsistencyToken>(),
                Err(InvalidConsistencyToken),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn tokens_order_as_the_log() {
        let early: ConsistencyToken = "wal:0/FFFFFFFF".parse().unwrap();
        let late: ConsistencyToken = "wal:1/0".parse().unwrap();
        assert!(early < late);
        assert_eq!(Some(early).max(Some(late)), Some(late));
    }
}
