//! TSIG keys (RFC 8945) in the key-file form BIND and Knot users know:
//!
//! ```text
//! key "transfer" {
//!     algorithm hmac-sha256;
//!     secret "base64==";
//! };
//! ```
//!
//! Owns parsing (several blocks per file, `#`, `//` and `/* */` comments), printing, and
//! turning a key into hickory's `TSigner`. It must not sign or verify messages itself.
//! Supported algorithms: hmac-sha256 (default), hmac-sha384, hmac-sha512. A secret under
//! [`MIN_SECRET`] bytes is refused (RFC 8945 section 6: at least half the hash length is
//! the floor worth having; 16 bytes is 128 bits). Secrets are wiped when dropped (hickory's
//! `TSigner` keeps a copy of its own, which it does not wipe).

use std::{fmt, path::Path};

use base64::{Engine, engine::general_purpose::STANDARD};
use hickory_proto::rr::{Name, TSigner, rdata::tsig::TsigAlgorithm};
use zeroize::Zeroizing;

/// Seconds of clock difference tolerated, as BIND uses.
pub const FUDGE: u16 = 300;
/// The shortest secret accepted, in bytes.
pub const MIN_SECRET: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum TsigError {
    #[error("failed to read TSIG key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("TSIG key file {path}: {message}")]
    Parse { path: String, message: String },
}

/// One shared secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TsigKey {
    pub name: Name,
    pub algorithm: Algorithm,
    pub secret: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for TsigKey {
    // The secret never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl Algorithm {
    fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "hmac-sha256" => Some(Self::HmacSha256),
            "hmac-sha384" => Some(Self::HmacSha384),
            "hmac-sha512" => Some(Self::HmacSha512),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha256 => "hmac-sha256",
            Self::HmacSha384 => "hmac-sha384",
            Self::HmacSha512 => "hmac-sha512",
        }
    }

    /// Secret length `keygen` uses: the hash's output length.
    pub fn secret_len(self) -> usize {
        match self {
            Self::HmacSha256 => 32,
            Self::HmacSha384 => 48,
            Self::HmacSha512 => 64,
        }
    }

    pub(crate) fn hickory(self) -> TsigAlgorithm {
        match self {
            Self::HmacSha256 => TsigAlgorithm::HmacSha256,
            Self::HmacSha384 => TsigAlgorithm::HmacSha384,
            Self::HmacSha512 => TsigAlgorithm::HmacSha512,
        }
    }
}

impl TsigKey {
    /// A new random key.
    pub fn generate(name: Name, algorithm: Algorithm) -> Self {
        use ring::rand::{SecureRandom, SystemRandom};
        let mut secret = vec![0u8; algorithm.secret_len()];
        // SystemRandom only fails when the OS has no entropy source at all.
        SystemRandom::new()
            .fill(&mut secret)
            .expect("the OS random source works");
        Self {
            name,
            algorithm,
            secret: Zeroizing::new(secret),
        }
    }

    /// The `key "NAME" { ... };` block.
    pub fn to_key_block(&self) -> String {
        let name = self.name.to_string();
        format!(
            "key \"{}\" {{\n\talgorithm {};\n\tsecret \"{}\";\n}};\n",
            name.trim_end_matches('.'),
            self.algorithm.as_str(),
            STANDARD.encode(&self.secret)
        )
    }

    /// hickory's signer for this key.
    pub fn signer(&self) -> TSigner {
        TSigner::new(
            self.secret.to_vec(),
            self.algorithm.hickory(),
            self.name.clone(),
            FUDGE,
        )
        // Local invariant: only supported algorithms can be constructed.
        .expect("supported TSIG algorithm")
    }
}

/// Reads every key block in the file at `path`.
pub fn load(path: &Path) -> Result<Vec<TsigKey>, TsigError> {
    let text = std::fs::read_to_string(path).map_err(|source| TsigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text).map_err(|message| TsigError::Parse {
        path: path.display().to_string(),
        message,
    })
}

/// Parses key blocks; at least one is required.
pub fn parse(text: &str) -> Result<Vec<TsigKey>, String> {
    let tokens = tokens(&strip_comments(text));
    let mut keys = Vec::new();
    let mut rest = tokens.as_slice();
    while !rest.is_empty() {
        let (key, tail) = key_block(rest)?;
        keys.push(key);
        rest = tail;
    }
    if keys.is_empty() {
        return Err("no `key \"NAME\" { ... };` block found".into());
    }
    Ok(keys)
}

fn key_block(tokens: &[String]) -> Result<(TsigKey, &[String]), String> {
    let [keyword, name, open, rest @ ..] = tokens else {
        return Err("expected `key \"NAME\" {`".into());
    };
    if keyword != "key" || open != "{" {
        return Err(format!(
            "expected `key \"NAME\" {{`, found `{keyword} {name} {open}`"
        ));
    }
    let mut name =
        Name::from_ascii(unquote(name)).map_err(|e| format!("key name `{name}`: {e}"))?;
    // Key names are matched against TSIG owner names, which are always absolute.
    name.set_fqdn(true);
    let close = rest
        .iter()
        .position(|t| t == "}")
        .ok_or_else(|| format!("key {name}: missing `}};`"))?;
    let (body, tail) = rest.split_at(close);
    let tail = tail[1..]
        .strip_prefix(&[";".to_string()])
        .unwrap_or(&tail[1..]);
    let (mut algorithm, mut secret) = (None, None);
    for statement in body.split(|t| t == ";").filter(|s| !s.is_empty()) {
        match statement {
            [k, v] if k == "algorithm" => {
                algorithm = Some(Algorithm::parse(unquote(v)).ok_or_else(|| {
                    format!("key {name}: unsupported algorithm `{v}` (use hmac-sha256, hmac-sha384 or hmac-sha512)")
                })?);
            }
            [k, v] if k == "secret" => {
                let bytes = Zeroizing::new(
                    STANDARD
                        .decode(unquote(v))
                        .map_err(|e| format!("key {name}: secret is not base64: {e}"))?,
                );
                if bytes.len() < MIN_SECRET {
                    return Err(format!(
                        "key {name}: the secret is {} bytes; at least {MIN_SECRET} are needed",
                        bytes.len()
                    ));
                }
                secret = Some(bytes);
            }
            other => return Err(format!("key {name}: unexpected `{}`", other.join(" "))),
        }
    }
    let key = TsigKey {
        algorithm: algorithm.ok_or_else(|| format!("key {name}: missing `algorithm`"))?,
        secret: secret.ok_or_else(|| format!("key {name}: missing `secret`"))?,
        name,
    };
    Ok((key, tail))
}

fn unquote(token: &str) -> &str {
    token.trim_matches('"')
}

/// Removes `#`, `//` and `/* */` comments outside quoted strings: base64 secrets often
/// hold `/` and even `//`.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                out.push(c);
            }
            _ if quoted => out.push(c),
            '#' => skip_line(&mut chars),
            '/' if chars.peek() == Some(&'/') => skip_line(&mut chars),
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
                out.push(' ');
            }
            _ => out.push(c),
        }
    }
    out
}

fn skip_line(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in chars.by_ref() {
        if c == '\n' {
            break;
        }
    }
}

/// Splits into words, quoted strings, and the punctuation `{`, `}`, `;`.
fn tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '{' | '}' | ';' => tokens.push(c.to_string()),
            '"' => {
                let quoted: String = chars.by_ref().take_while(|c| *c != '"').collect();
                tokens.push(format!("\"{quoted}\""));
            }
            c => {
                let mut word = c.to_string();
                while let Some(&next) = chars.peek() {
                    if next.is_whitespace() || "{};\"".contains(next) {
                        break;
                    }
                    word.push(next);
                    chars.next();
                }
                tokens.push(word);
            }
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As `tsig-keygen -a hmac-sha256 transfer` prints it.
    const BIND: &str = r#"key "transfer" {
	algorithm hmac-sha256;
	secret "0AyJ6J1ygkLeXEjVN9RzZRtPJAdhXtWkJbjBHMa6L8M=";
};
"#;

    #[test]
    fn reads_what_tsig_keygen_prints() {
        let keys = parse(BIND).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].name.to_string(), "transfer.");
        assert_eq!(keys[0].algorithm, Algorithm::HmacSha256);
        assert_eq!(keys[0].secret.len(), 32);
    }

    #[test]
    fn round_trips_and_takes_comments_and_several_keys() {
        let key = TsigKey::generate(Name::from_ascii("a.b.").unwrap(), Algorithm::HmacSha512);
        let text = format!("# one\n{}\n/* two\n */ {} // end", key.to_key_block(), BIND);
        let keys = parse(&text).unwrap();
        assert_eq!(keys[0], key);
        assert_eq!(keys[1].name.to_string(), "transfer.");
    }

    #[test]
    fn errors_name_the_problem() {
        let md5 = BIND.replace("hmac-sha256", "hmac-md5");
        assert!(parse(&md5).unwrap_err().contains("unsupported algorithm"));
        let no_secret = "key \"k\" { algorithm hmac-sha256; };";
        assert!(parse(no_secret).unwrap_err().contains("missing `secret`"));
        assert!(parse("").unwrap_err().contains("no `key"));
        let bad = BIND.replace("0AyJ", "!!!!");
        assert!(parse(&bad).unwrap_err().contains("not base64"));
        let short = "key \"k\" { algorithm hmac-sha256; secret \"c2hvcnQ=\"; };";
        let err = parse(short).unwrap_err();
        assert!(
            err.contains("5 bytes") && err.contains("at least 16"),
            "{err}"
        );
        assert!(
            parse(&short.replace("c2hvcnQ=", "")).is_err(),
            "an empty secret"
        );
    }

    #[test]
    fn slashes_inside_a_secret_are_not_a_comment() {
        let key = "key \"k\" { algorithm hmac-sha256; secret \"ab//cd/+ef//ghijklmnopqrstuv\"; }; // note";
        let keys = parse(key).unwrap();
        assert_eq!(
            STANDARD.encode(&keys[0].secret),
            "ab//cd/+ef//ghijklmnopqrstuv"
        );
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let key = parse(BIND).unwrap().remove(0);
        assert!(!format!("{key:?}").contains("0AyJ"));
    }
}
