//! The ACME layer's errors, and the decisions made on them: by the CA's problem type, never
//! by the text of a message.

use super::{Laggard, client};
use crate::{state::StateError, tls::TlsError};

/// The problem type a CA answers with when it no longer knows the account (RFC 8555 7.3.1).
const ACCOUNT_DOES_NOT_EXIST: &str = "urn:ietf:params:acme:error:accountDoesNotExist";

/// What stops an order before it starts, from outside this layer (`Announce`): the
/// error is kept as its own type, not turned into text.
pub type Refusal = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("failed to {action}: {detail}")]
    Ca {
        action: &'static str,
        detail: String,
        /// The ACME problem's type (RFC 8555 6.7) when the CA sent one: what decisions
        /// are made on, never the text.
        problem: Option<String>,
    },
    #[error("failed to read CA roots {path}: {reason}")]
    Roots { path: String, reason: String },
    #[error(transparent)]
    Propagation(#[from] Laggard),
    #[error("order failed: {0}")]
    Order(String),
    /// The announcer's error, kept whole (a CAA refusal names its record).
    #[error("order failed: {0}")]
    Announce(Refusal),
    #[error("failed to make the certificate key or request: {0}")]
    Key(rcgen::Error),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("the CA's certificate is unusable: {0}")]
    Tls(#[from] TlsError),
}

impl AcmeError {
    /// Wraps an instant-acme error, showing an ACME problem's type and detail.
    pub(super) fn ca(action: &'static str) -> impl FnOnce(instant_acme::Error) -> Self {
        move |error| {
            let (detail, problem) = match &error {
                instant_acme::Error::Api(problem) => {
                    (client::describe(problem), problem.r#type.clone())
                }
                other => (other.to_string(), None),
            };
            Self::Ca {
                action,
                detail,
                problem,
            }
        }
    }

    pub(super) fn is_account_gone(&self) -> bool {
        matches!(
            self,
            Self::Ca { problem: Some(kind), .. } if kind == ACCOUNT_DOES_NOT_EXIST
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(kind: &str) -> instant_acme::Error {
        let problem =
            serde_json::json!({ "type": kind, "detail": "no such account", "status": 400 });
        instant_acme::Error::Api(serde_json::from_value(problem).unwrap())
    }

    #[test]
    fn account_gone_is_read_from_the_problem_type_not_the_text() {
        let gone = AcmeError::ca("find the account")(api_error(ACCOUNT_DOES_NOT_EXIST));
        assert!(gone.is_account_gone(), "{gone}");
        let other =
            AcmeError::ca("find the account")(api_error("urn:ietf:params:acme:error:malformed"));
        assert!(!other.is_account_gone(), "{other}");
        // A detail that merely mentions the type is not the type.
        let text = AcmeError::Ca {
            action: "order",
            detail: "accountDoesNotExist".into(),
            problem: None,
        };
        assert!(!text.is_account_gone());
    }
}
