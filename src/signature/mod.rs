//! Signature schemes and verification: pure functions over headers and the raw body, free of axum
//! and tokio, importing nothing from the rest of the crate.
//!
//! The one way to obtain a [`Verified`] body is [`Verifier::verify`]; the HTTP layer hands payload
//! parsing only `Verified::body`, so forgetting verification is a compile error there.

pub mod parse;
pub mod providers;
pub mod scheme;
pub mod secret;
pub mod sign;
pub mod verify;

pub use parse::Malformed;
pub use providers::ed25519::PublicKey;
pub use scheme::{
    Algorithm, DeliveryIdSource, Encoding, EndpointKind, EventSource, Provider, Scheme,
};
pub use secret::{key_bytes, key_len, Key, KeyError, Secret, MIN_KEY_BYTES};
pub use sign::sign;
pub use verify::{
    cap_label, delivery_key, hashed_key, looks_hashed, Handshake, SignatureError, Verified,
    Verifier, MAX_DELIVERY_ID_LEN, MAX_EVENT_LEN,
};

#[cfg(test)]
mod tests;
