//! Whether the CAA records that apply to a name let this CA issue to this account
//! (RFC 8659 4, RFC 8657 3 and 4), so the master refuses to order what the CA must refuse,
//! naming the record. Pure: the records are looked up by the caller.

use hickory_proto::rr::{Name, rdata::CAA};

/// A CAA record set that makes the CA refuse an order, with the records shown as a zone
/// file would hold them.
#[derive(Debug, thiserror::Error)]
pub enum CaaRefusal {
    #[error("CAA record {record} is for another ACME account (ours is {account})")]
    OtherAccount { record: String, account: String },
    #[error("CAA record {record} does not allow dns-01 validation")]
    NoDns01 { record: String },
    #[error("CAA record {records} allows only other CAs (this one is {identities})")]
    OtherCas { records: String, identities: String },
}

/// The `issue` properties of the relevant record set at `owner` allow `account` at a CA
/// known as one of `identities`; an empty set, or one without `issue`, allows any CA.
pub(super) fn check(
    owner: &Name,
    set: &[CAA],
    identities: &[String],
    account: &str,
) -> Result<(), CaaRefusal> {
    let issues: Vec<(&CAA, Issue)> = set
        .iter()
        .filter(|caa| caa.tag.eq_ignore_ascii_case("issue"))
        .map(|caa| (caa, Issue::parse(&caa.value)))
        .collect();
    if issues.is_empty() {
        return Ok(());
    }
    let ours = |issue: &Issue| {
        issue
            .issuer
            .as_ref()
            .is_some_and(|i| identities.iter().any(|id| id.eq_ignore_ascii_case(i)))
    };
    if issues
        .iter()
        .any(|(_, issue)| ours(issue) && issue.allows(account))
    {
        return Ok(());
    }
    let shown = |caa: &CAA| {
        format!(
            "`{owner} CAA {} {} \"{}\"`",
            (u8::from(caa.issuer_critical) * 128) | caa.reserved_flags,
            caa.tag,
            String::from_utf8_lossy(&caa.value)
        )
    };
    if let Some((caa, issue)) = issues.iter().find(|(_, issue)| ours(issue)) {
        let record = shown(caa);
        return Err(if issue.account.as_deref().is_some_and(|a| a != account) {
            CaaRefusal::OtherAccount {
                record,
                account: account.to_owned(),
            }
        } else {
            CaaRefusal::NoDns01 { record }
        });
    }
    let records: Vec<String> = issues.iter().map(|(caa, _)| shown(caa)).collect();
    Err(CaaRefusal::OtherCas {
        records: records.join(", "),
        identities: identities.join(" or "),
    })
}

/// One `issue` value: `issuer-domain-name *(";" tag "=" value)`.
struct Issue {
    /// `None` for `;` alone: no CA may issue.
    issuer: Option<String>,
    account: Option<String>,
    methods: Option<Vec<String>>,
}

impl Issue {
    fn parse(value: &[u8]) -> Self {
        let text = String::from_utf8_lossy(value);
        let mut parts = text.split(';');
        let issuer = parts
            .next()
            .map(|i| i.trim().trim_end_matches('.').to_string())
            .filter(|i| !i.is_empty());
        let (mut account, mut methods) = (None, None);
        for part in parts {
            let Some((tag, value)) = part.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match tag.trim().to_ascii_lowercase().as_str() {
                "accounturi" => account = Some(value.to_string()),
                "validationmethods" => {
                    methods = Some(value.split(',').map(|m| m.trim().to_string()).collect())
                }
                _ => {}
            }
        }
        Self {
            issuer,
            account,
            methods,
        }
    }

    fn allows(&self, account: &str) -> bool {
        self.account.as_deref().is_none_or(|a| a == account)
            && self
                .methods
                .as_ref()
                .is_none_or(|m| m.iter().any(|m| m == "dns-01"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `issuer; key=value; ...` as a zone file would give it.
    fn issue(value: &str) -> CAA {
        let mut parts = value.split(';');
        let issuer = parts
            .next()
            .filter(|i| !i.trim().is_empty())
            .map(|i| Name::from_ascii(i.trim()).unwrap());
        let options = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| hickory_proto::rr::rdata::caa::KeyValue::new(k.trim(), v.trim()))
            .collect();
        CAA::new_issue(false, issuer, options)
    }

    const OURS: &str = "https://ca.test/acct/1";

    #[test]
    fn our_ca_and_account_pass_others_are_named() {
        let owner = Name::from_ascii("ns1.example.test.").unwrap();
        let ids = ["ca.test".to_string()];
        let check = |set: &[CAA]| check(&owner, set, &ids, OURS);
        assert!(check(&[]).is_ok());
        assert!(check(&[issue("ca.test")]).is_ok());
        assert!(
            check(&[issue(
                "ca.test; accounturi=https://ca.test/acct/1; validationmethods=dns-01"
            )])
            .is_ok()
        );
        let other = check(&[issue("ca.test; accounturi=https://ca.test/acct/2")]).unwrap_err();
        assert!(matches!(other, CaaRefusal::OtherAccount { .. }), "{other}");
        let other = other.to_string();
        assert!(
            other.contains(
                "ns1.example.test. CAA 0 issue \"ca.test; accounturi=https://ca.test/acct/2\""
            ) && other.contains("another ACME account"),
            "{other}"
        );
        let method = check(&[issue("ca.test; validationmethods=http-01")]).unwrap_err();
        assert!(matches!(method, CaaRefusal::NoDns01 { .. }), "{method}");
        let method = method.to_string();
        assert!(method.contains("dns-01"), "{method}");
        let ca = check(&[issue("letsencrypt.org"), issue(";")]).unwrap_err();
        assert!(matches!(ca, CaaRefusal::OtherCas { .. }), "{ca}");
        let ca = ca.to_string();
        assert!(
            ca.contains("only other CAs") && ca.contains("letsencrypt.org"),
            "{ca}"
        );
    }
}
