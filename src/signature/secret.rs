//! Secrets and the HMAC keys they stand for. Neither shows its bytes in `Debug`, so a config dump
//! or an error cannot leak one.

use std::fmt;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Digest;

use super::scheme::{Algorithm, Scheme};

/// A secret's bytes, as the operator configured them.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Why a secret cannot be a scheme's key. Only Standard Webhooks constrains it (`whsec_<base64>`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("is not text (expected whsec_<base64>)")]
    NotText,
    #[error("is not base64 after the whsec_ prefix")]
    NotBase64,
    #[error("decodes to an empty key")]
    Empty,
    /// HMAC pads a short key with zeros, so an all-zero key verifies exactly like the empty one.
    #[error("is all zero bytes, which HMAC treats as the empty key")]
    AllZero,
    /// `sign` for a scheme that verifies with public keys (Discord): there is no secret to sign with.
    #[error("cannot sign: this provider verifies with Ed25519 public keys, which cannot sign")]
    PublicKeyOnly,
    /// `sign` for Twilio without the URL it signs.
    #[error(
        "cannot sign: twilio signs the public URL of the hook; give it (sign --public-url URL)"
    )]
    NoPublicUrl,
    /// `sign` for a body the scheme cannot carry (a Twilio form parameter that is not UTF-8).
    #[error("cannot sign: {0}")]
    Unsignable(String),
}

/// Below this a key is guessable offline from one signed request; warned about, not refused, since
/// NetBox secrets are often short phrases.
pub const MIN_KEY_BYTES: usize = 16;

/// One secret made ready for a scheme: the HMAC state with the key already absorbed, so cloning it
/// skips re-hashing the key on every request, and the key bytes, for the provider verifiers that
/// take them as they are (and for Zoom's answer, made with the secret that verified).
#[derive(Clone)]
pub struct Key {
    state: KeyState,
    bytes: Vec<u8>,
}

#[derive(Clone)]
enum KeyState {
    Md5(Hmac<md5::Md5>),
    Sha1(Hmac<sha1::Sha1>),
    Sha256(Hmac<sha2::Sha256>),
    Sha512(Hmac<sha2::Sha512>),
    /// GitLab: the SHA-256 of the token, so comparison is constant-time whatever the lengths.
    Token([u8; 32]),
}

/// The bytes a secret stands for under `scheme` (Standard Webhooks secrets are base64); also the
/// http relay's signing key, so a relay secret decodes exactly as a hook's would.
pub fn key_bytes(scheme: &Scheme, secret: &Secret) -> Result<Vec<u8>, KeyError> {
    match scheme {
        Scheme::StandardWebhooks => {
            let text = std::str::from_utf8(secret.expose()).map_err(|_| KeyError::NotText)?;
            let b64 = text.strip_prefix("whsec_").unwrap_or(text);
            let key = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| KeyError::NotBase64)?;
            if key.is_empty() {
                return Err(KeyError::Empty);
            }
            Ok(key)
        }
        _ => Ok(secret.expose().to_vec()),
    }
    .and_then(|key| {
        if !key.is_empty() && key.iter().all(|&b| b == 0) {
            return Err(KeyError::AllZero);
        }
        Ok(key)
    })
}

/// How many key bytes `secret` gives under `scheme`, for the short-key warning.
pub fn key_len(scheme: &Scheme, secret: &Secret) -> Result<usize, KeyError> {
    key_bytes(scheme, secret).map(|k| k.len())
}

impl Key {
    /// The key `secret` stands for under `scheme`; fails only on a secret the scheme cannot use.
    pub fn new(scheme: &Scheme, secret: &Secret) -> Result<Key, KeyError> {
        let key = key_bytes(scheme, secret)?;
        // `new_from_slice` accepts keys of any length for HMAC, so the expects below cannot fire.
        let state = match scheme {
            Scheme::Gitlab => KeyState::Token(sha2::Sha256::digest(&key).into()),
            _ => match scheme.algorithm() {
                Algorithm::Md5 => {
                    KeyState::Md5(Mac::new_from_slice(&key).expect("hmac takes any key"))
                }
                Algorithm::Sha1 => {
                    KeyState::Sha1(Mac::new_from_slice(&key).expect("hmac takes any key"))
                }
                Algorithm::Sha256 => {
                    KeyState::Sha256(Mac::new_from_slice(&key).expect("hmac takes any key"))
                }
                Algorithm::Sha512 => {
                    KeyState::Sha512(Mac::new_from_slice(&key).expect("hmac takes any key"))
                }
            },
        };
        Ok(Key { state, bytes: key })
    }

    /// The key bytes (a Standard Webhooks secret decoded from base64).
    pub(super) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// HMAC of the concatenated parts (GitLab: the token's digest).
    pub(super) fn tag(&self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + Clone>(m: &M, parts: &[&[u8]]) -> Vec<u8> {
            let mut m = m.clone();
            for p in parts {
                m.update(p);
            }
            m.finalize().into_bytes().to_vec()
        }
        match &self.state {
            KeyState::Md5(m) => run(m, parts),
            KeyState::Sha1(m) => run(m, parts),
            KeyState::Sha256(m) => run(m, parts),
            KeyState::Sha512(m) => run(m, parts),
            KeyState::Token(t) => t.to_vec(),
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_zero_keys_are_refused_and_lengths_counted() {
        let sw = Scheme::StandardWebhooks;
        let nb = Scheme::Netbox;
        assert_eq!(
            Key::new(&sw, &Secret::new("whsec_AAAA")).err(),
            Some(KeyError::AllZero)
        );
        assert_eq!(
            Key::new(&nb, &Secret::new(vec![0u8])).err(),
            Some(KeyError::AllZero)
        );
        assert!(Key::new(&nb, &Secret::new(vec![0u8, 1])).is_ok());
        assert_eq!(key_len(&sw, &Secret::new("whsec_AAAB")), Ok(3));
    }
}
