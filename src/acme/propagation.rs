//! Confirms that every authoritative server answers the challenge before the CA is told
//! "ready": the CA may ask any of them, and one that lags fails the order and counts against
//! the CA's limits. Queries go the way Pebble's and Let's Encrypt's do: UDP, no EDNS.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use hickory_proto::rr::{Name, RData, RecordType};

use crate::dns::client::ask::{AskError, Over, ask};

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
            match txt(*server, owner).await {
                Ok(found) if values.iter().all(|v| found.contains(v)) => {
                    tracing::info!(%server, %owner, "challenge is served");
                    break;
                }
                Ok(found) => last = format!("{} of {} values", count(&found, values), values.len()),
                Err(e) => last = e.to_string(),
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
async fn txt(server: SocketAddr, owner: &Name) -> Result<Vec<String>, AskError> {
    let answer = ask(server, owner, RecordType::TXT, Over::Udp, QUERY_TIMEOUT).await?;
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
