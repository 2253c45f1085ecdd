//! One question asked as a resolver would, its answer decoded: what the ACME propagation
//! check and the announce watch need, with typed errors. It must not judge the answer.

use std::{net::SocketAddr, time::Duration};

use hickory_proto::{
    op::{Message, Query},
    rr::{Name, RecordType},
};
use tokio::time::timeout;

use super::exchange;

/// How the question travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Over {
    Udp,
    Tcp,
}

/// Why a question got no usable answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AskError {
    #[error("cannot encode the query: {0}")]
    Encode(hickory_proto::ProtoError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("unreadable answer: {0}")]
    Decode(hickory_proto::serialize::binary::DecodeError),
    #[error("answer with another id")]
    OtherId,
}

/// Asks `server` for `name` `rtype`, waiting at most `limit`.
pub(crate) async fn ask(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    over: Over,
    limit: Duration,
) -> Result<Message, AskError> {
    let mut query = Message::query();
    let id = exchange::random_id();
    query.metadata.id = id;
    query.add_query(Query::query(name.clone(), rtype));
    let bytes = query.to_vec().map_err(AskError::Encode)?;
    let answer = async {
        match over {
            Over::Udp => exchange::udp(server, None, &bytes, id).await,
            Over::Tcp => exchange::tcp(server, None, &bytes).await,
        }
    };
    let answer = timeout(limit, answer)
        .await
        .map_err(|_| AskError::Timeout(limit))??;
    let answer = Message::from_vec(&answer).map_err(AskError::Decode)?;
    if answer.metadata.id != id {
        return Err(AskError::OtherId);
    }
    Ok(answer)
}
