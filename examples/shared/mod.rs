//! What both reference servers do per request before anything else: check the NetBox signature.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::Sha512;

/// Whether `X-Hook-Signature` is the HMAC-SHA512 hex of `body` (compared in constant time).
pub fn signed(key: &Hmac<Sha512>, headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(sig) = headers
        .get("x-hook-signature")
        .and_then(|v| hex::decode(v.as_bytes()).ok())
    else {
        return false;
    };
    let mut mac = key.clone();
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}
