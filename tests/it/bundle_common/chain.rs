//! Test certificate chains made with rcgen, shared by the bundle's unit
//! tests (via `#[path]`) and its integration tests. Test code only.

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair, date_time_ymd,
};

/// A chain (leaf first, ending in a self-signed root) and the leaf's
/// PKCS#8 key.
pub(crate) struct TestChain {
    pub(crate) chain: Vec<Vec<u8>>,
    pub(crate) leaf_key: Vec<u8>,
}

/// Validity as (year, month, day) pairs.
pub(crate) type Span = ((i32, u8, u8), (i32, u8, u8));

/// The leaf's default validity: 2025-01-01 to 2035-01-01.
pub(crate) const LEAF_SPAN: Span = ((2025, 1, 1), (2035, 1, 1));

/// 2030-01-01, inside [`LEAF_SPAN`].
pub(crate) const NOW: u64 = 1_893_456_000;

fn params(names: &[&str], cn: &str, span: Span, ca: bool) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut p = CertificateParams::new(names).expect("test names are valid");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.not_before = date_time_ymd(span.0.0, span.0.1, span.0.2);
    p.not_after = date_time_ymd(span.1.0, span.1.1, span.1.2);
    if ca {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    p
}

/// `len` certificates: a leaf for `names` valid over `leaf_span`, then
/// `len - 1` CAs up to a self-signed root (a chain of 1 is a self-signed
/// leaf).
pub(crate) fn make_chain(len: usize, names: &[&str], leaf_span: Span) -> TestChain {
    let ca_span: Span = ((2000, 1, 1), (2100, 1, 1));
    let mut issuer: Option<(Certificate, KeyPair)> = None;
    let mut cas = Vec::new();
    for i in (1..len).rev() {
        let key = KeyPair::generate().expect("keygen");
        let p = params(&[], &format!("certzone test ca {i}"), ca_span, true);
        let cert = sign(p, &key, issuer.as_ref());
        cas.push(cert.der().to_vec());
        issuer = Some((cert, key));
    }
    let key = KeyPair::generate().expect("keygen");
    let leaf = sign(
        params(names, "certzone test leaf", leaf_span, false),
        &key,
        issuer.as_ref(),
    );
    let mut chain = vec![leaf.der().to_vec()];
    chain.extend(cas.into_iter().rev());
    TestChain {
        chain,
        leaf_key: key.serialize_der(),
    }
}

fn sign(
    p: CertificateParams,
    key: &KeyPair,
    issuer: Option<&(Certificate, KeyPair)>,
) -> Certificate {
    match issuer {
        Some((cert, issuer_key)) => p.signed_by(key, cert, issuer_key),
        None => p.self_signed(key),
    }
    .expect("rcgen signs")
}
