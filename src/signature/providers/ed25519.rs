//! Ed25519 with the strict rules a receiver should apply: keys that are small-order (they verify
//! forged signatures for many messages) or not canonically encoded are refused when the
//! configuration is loaded, and signatures go through `verify_strict` (canonical `S < L`, no
//! small-order `R` or `A`).

use ed25519_dalek::{Signature, VerifyingKey};

/// An application's or sender's public key, checked at load. Public, so `Debug` may show it.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", hex::encode(self.0.as_bytes()))
    }
}

/// Why configured key material cannot be used. Said at config load, never per request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

impl PublicKey {
    /// The 32-byte compressed point, refusing what `verify_strict` would make useless or dangerous.
    pub fn from_bytes(bytes: &[u8]) -> Result<PublicKey, KeyError> {
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| {
            KeyError(format!(
                "an Ed25519 public key is 32 bytes, this is {}",
                bytes.len()
            ))
        })?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| KeyError("not a point on the Ed25519 curve".into()))?;
        if key.is_weak() {
            return Err(KeyError(
                "a small-order (weak) Ed25519 key, which would accept forged signatures".into(),
            ));
        }
        // Decompression accepts y >= p; such an encoding is not the key's canonical form, and no
        // honest signer produces it.
        if key.to_edwards().compress().to_bytes() != bytes {
            return Err(KeyError("a non-canonical Ed25519 point encoding".into()));
        }
        Ok(PublicKey(key))
    }

    /// Hex, as Discord's developer portal shows an application's key.
    pub fn from_hex(text: &str) -> Result<PublicKey, KeyError> {
        let bytes = hex::decode(text.trim())
            .map_err(|_| KeyError("an Ed25519 public key here is 64 hex characters".into()))?;
        PublicKey::from_bytes(&bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// True when `sig` is a valid strict signature of `message` under this key.
    pub fn verify(&self, message: &[u8], sig: &[u8; 64]) -> bool {
        self.0
            .verify_strict(message, &Signature::from_bytes(sig))
            .is_ok()
    }
}

/// True when any signature verifies under any key. Public-key verification has no secret to leak
/// through timing, so no constant-time care is needed here.
pub fn any_verifies(keys: &[PublicKey], message: &[u8], sigs: &[[u8; 64]]) -> bool {
    keys.iter()
        .any(|k| sigs.iter().any(|s| k.verify(message, s)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// RFC 8032 section 7.1, TEST 1, 2 and 3: (public key, message, signature).
    const RFC8032: [(&str, &str, &str); 3] = [
        (
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
    ];

    pub(crate) fn sig64(hex_text: &str) -> [u8; 64] {
        hex::decode(hex_text).unwrap().try_into().unwrap()
    }

    /// The group order L, little-endian, for making `S + L` (same value mod L, non-canonical).
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    /// `sig` with `S` replaced by `S + L`: the same signature under lax verification, refused by
    /// a strict one.
    pub(crate) fn non_canonical(sig: &[u8; 64]) -> [u8; 64] {
        let mut out = *sig;
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(sig[32 + i]) + u16::from(L[i]) + carry;
            out[32 + i] = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0, "S + L fits in 256 bits since S < L");
        out
    }

    #[test]
    fn rfc8032_vectors_verify_and_tampering_does_not() {
        for (pk, msg, sig) in RFC8032 {
            let key = PublicKey::from_hex(pk).unwrap();
            let msg = hex::decode(msg).unwrap();
            let sig = sig64(sig);
            assert!(key.verify(&msg, &sig), "RFC 8032 vector for key {pk}");
            let mut bad = sig;
            bad[0] ^= 1;
            assert!(!key.verify(&msg, &bad));
            let mut longer = msg.clone();
            longer.push(0);
            assert!(!key.verify(&longer, &sig));
        }
    }

    #[test]
    fn non_canonical_s_is_refused() {
        let (pk, msg, sig) = RFC8032[1];
        let key = PublicKey::from_hex(pk).unwrap();
        let msg = hex::decode(msg).unwrap();
        let nc = non_canonical(&sig64(sig));
        assert_ne!(nc, sig64(sig));
        assert!(!key.verify(&msg, &nc), "S >= L must be refused");
    }

    #[test]
    fn small_order_and_non_canonical_keys_are_refused() {
        // The eight points of small order in their usual encodings (as listed by libsodium's and
        // Zcash's ZIP 215 test suites), plus y = 0 with the sign bit set.
        let weak = [
            "0100000000000000000000000000000000000000000000000000000000000000",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "0000000000000000000000000000000000000000000000000000000000000000",
            "0000000000000000000000000000000000000000000000000000000000000080",
            "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
            "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        ];
        for w in weak {
            assert!(PublicKey::from_hex(w).is_err(), "small-order key {w}");
        }
        // The identity decodes as a point, so it is the weakness check that refuses it.
        let identity = VerifyingKey::from_bytes(&hex::decode(weak[0]).unwrap().try_into().unwrap());
        assert!(identity.unwrap().is_weak());
        let mut refused_only_as_non_canonical = 0;
        // y = p + k for small k: encodings of y = k that are >= p. Any that decompress must still
        // be refused as non-canonical.
        for k in 0u8..19 {
            let mut enc = [0xffu8; 32];
            enc[0] = 0xed + k; // p = 2^255 - 19 is ed ff .. ff 7f little-endian
            enc[31] = 0x7f;
            assert!(
                PublicKey::from_bytes(&enc).is_err(),
                "non-canonical y = p + {k}"
            );
            if VerifyingKey::from_bytes(&enc).is_ok_and(|v| !v.is_weak()) {
                refused_only_as_non_canonical += 1;
            }
        }
        assert!(
            refused_only_as_non_canonical > 0,
            "some y >= p decode to strong points, and the canonical-encoding check refuses them"
        );
        assert!(PublicKey::from_hex("abcd").is_err());
        assert!(PublicKey::from_hex("zz").is_err());
    }
}
