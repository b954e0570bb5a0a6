//! The independent Ed25519 signer: `ring`, a different implementation than the verifier's
//! `ed25519-dalek`, so a bug shared by signer and verifier cannot pass. Kept apart from `sign.rs`,
//! which the fuzz targets share and which must stay free of `ring`.

use ring::signature::{Ed25519KeyPair, KeyPair};

/// A key pair from a 32-byte seed, as Discord's and Standard Webhooks' senders hold one.
pub struct Signer(Ed25519KeyPair);

impl Signer {
    /// Seed `n` of the tests: distinct, fixed keys.
    pub fn numbered(n: u8) -> Signer {
        let seed = [n.wrapping_mul(37).wrapping_add(11); 32];
        Signer(Ed25519KeyPair::from_seed_unchecked(&seed).expect("32-byte seed"))
    }

    pub fn public_key(&self) -> &[u8] {
        self.0.public_key().as_ref()
    }

    /// The public key as Discord's developer portal shows it.
    pub fn public_hex(&self) -> String {
        hex::encode(self.public_key())
    }

    /// The public key as Standard Webhooks serializes it: `whpk_` + base64.
    pub fn whpk(&self) -> String {
        format!("whpk_{}", super::sign::b64(self.public_key()))
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0
            .sign(message)
            .as_ref()
            .try_into()
            .expect("64-byte signature")
    }

    /// Discord's headers: `X-Signature-Ed25519` (hex) over `X-Signature-Timestamp` + body.
    pub fn discord_headers(&self, body: &[u8], ts: i64) -> Vec<(String, String)> {
        let ts = ts.to_string();
        let sig = self.sign(&[ts.as_bytes(), body].concat());
        vec![
            ("x-signature-ed25519".into(), hex::encode(sig)),
            ("x-signature-timestamp".into(), ts),
        ]
    }

    /// A Standard Webhooks `v1a,<base64>` entry over `{id}.{ts}.{body}`.
    pub fn standard_webhooks_v1a(&self, id: &str, ts: i64, body: &[u8]) -> String {
        let signed = [id.as_bytes(), b".", ts.to_string().as_bytes(), b".", body].concat();
        format!("v1a,{}", super::sign::b64(&self.sign(&signed)))
    }
}
