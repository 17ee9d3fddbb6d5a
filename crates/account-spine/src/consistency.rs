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
use crate::principal::{ConsistencyToken, OperatorPrincipal, Principal};
use crate::replicas::Reader;

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
