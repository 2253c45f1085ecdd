//! Confirms that every authoritative server answers the challenge before the CA is told
//! "ready": the CA may ask any of them, and one that lags fails the order and counts against
//! the CA's limits. Queries go the way Pebble's and Let's Encrypt's do: UDP, no EDNS.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use hickory_proto::{
    op::{Message, Query},
    rr::{Name, RData, RecordType},
};
use tokio::time::timeout;

use crate::dns::client::exchange;

/// Pause between rounds of queries.
const INTERVAL: Duration = Duration::from_millis(25);
/// One query's wait before it counts as unanswered.
const QUERY_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
#[error(
    "authoritative server {server} did not serve {owner} TXT with the challenge within {waited:?} (last: {last})"
)]
pub struct Laggard {
    pub server: SocketAddr,
    pub owner: String,
    pub waited: Duration,
    pub last: String,
}

/// Waits until every server in `servers` answers `owner` TXT with all of `values`.
pub(super) async fn confirm(
    servers: &[SocketAddr],
    owner: &Name,
    values: &[String],
    deadline: Duration,
) -> Result<(), Laggard> {
    let start = Instant::now();
    for server in servers {
        let mut last;
        loop {
            match ask(*server, owner).await {
                Ok(found) if values.iter().all(|v| found.contains(v)) => {
                    tracing::info!(%server, %owner, "challenge is served");
                    break;
                }
                Ok(found) => last = format!("{} of {} values", count(&found, values), values.len()),
                Err(e) => last = e,
            }
            if start.elapsed() >= deadline {
                return Err(Laggard {
                    server: *server,
                    owner: owner.to_string(),
                    waited: start.elapsed(),
                    last,
                });
            }
            tokio::time::sleep(INTERVAL).await;
        }
    }
    Ok(())
}

fn count(found: &[String], values: &[String]) -> usize {
    values.iter().filter(|v| found.contains(v)).count()
}

/// The TXT strings `server` answers for `owner`.
async fn ask(server: SocketAddr, owner: &Name) -> Result<Vec<String>, String> {
    let mut query = Message::query();
    query.metadata.id = exchange::random_id();
    query.add_query(Query::query(owner.clone(), RecordType::TXT));
    let bytes = query.to_vec().map_err(|e| e.to_string())?;
    let answer = timeout(
        QUERY_TIMEOUT,
        exchange::udp(server, None, &bytes, query.metadata.id),
    )
    .await
    .map_err(|_| "timeout".to_string())?
    .map_err(|e| e.to_string())?;
    let answer = Message::from_vec(&answer).map_err(|e| e.to_string())?;
    if answer.metadata.id != query.metadata.id {
        return Err("answer with another id".into());
    }
    Ok(answer
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect())
}
