//! The leaf's private key appears nowhere in what is published: not as DER,
//! PEM, base64 of either (at any alignment), nor its raw scalar, in the
//! records' wire form or their zone-file text.

use crate::bundle_common::Fixture;
use crate::common;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use certzone::bundle::zone_text;
use hickory_proto::serialize::binary::BinEncodable as _;
use p256::pkcs8::DecodePrivateKey as _;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.len() <= haystack.len() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// base64 of `data` from each of the three byte alignments, trimmed of the
/// characters that depend on neighbouring bytes.
fn base64_forms(data: &[u8]) -> Vec<Vec<u8>> {
    (0..3)
        .map(|skip| {
            let text = STANDARD.encode(&data[skip..]);
            text.as_bytes()[4..text.len() - 4].to_vec()
        })
        .collect()
}

fn secret_forms(der: &[u8]) -> Vec<Vec<u8>> {
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(der)
    );
    let scalar = p256::SecretKey::from_pkcs8_der(der)
        .expect("test leaf is P-256")
        .to_bytes();
    let mut forms = vec![der.to_vec(), pem.clone().into_bytes(), scalar.to_vec()];
    forms.extend(base64_forms(der));
    forms.extend(base64_forms(pem.as_bytes()));
    forms
}

#[test]
fn private_key_is_nowhere_in_wire_or_text() {
    let _gate = common::gate();
    let fx = Fixture::new(3, 5);
    let records = fx.publish();
    let mut wire = Vec::new();
    for record in &records {
        wire.extend(record.to_bytes().expect("record encodes"));
    }
    let text = zone_text(&records);
    for form in secret_forms(&fx.made.leaf_key) {
        assert!(!contains(&wire, &form), "secret form found in wire bytes");
        assert!(
            !contains(text.as_bytes(), &form),
            "secret form found in zone text"
        );
    }
    // the check itself works: the chain's DER is found in the wire form
    assert!(contains(&wire, &fx.made.chain[0]));
}
