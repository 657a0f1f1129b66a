//! Signed, opaque page cursors.
//!
//! A cursor is `base64url(JSON of the position) + "." + base64url(HMAC-SHA256(key, scope + "\n" +
//! payload))`, both parts without padding. The payload is the *encoded* first part, so the MAC covers
//! exactly the bytes the client sends back. The scope (e.g. `"conversations:leads"`) binds a cursor to
//! one list: a cursor issued for one list, or for another caller-visible filter, does not verify for
//! another. Clients cannot forge or edit positions (e.g. to point into another tenant's DynamoDB
//! key range); they can only read them (base64 is not encryption), so don't put secrets in cursors.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Longest cursor accepted by [`CursorSigner::decode`]: bounds work on hostile input.
pub const MAX_CURSOR_LEN: usize = 4096;
const MAC_LEN: usize = 32;

#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum CursorError {
    #[error("malformed page cursor")]
    Malformed,
    #[error("page cursor signature is invalid (tampered, expired key or issued for another list)")]
    BadSignature,
}

#[derive(Clone)]
pub struct CursorSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for CursorSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CursorSigner")
            .field("key", &"[redacted]")
            .finish()
    }
}

impl CursorSigner {
    /// Any key length works; use at least 32 random bytes.
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    fn mac(&self, scope: &str, payload: &str) -> [u8; MAC_LEN] {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(scope.as_bytes());
        mac.update(b"\n");
        mac.update(payload.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Encodes `value` as an opaque cursor valid only for `scope`.
    ///
    /// Panics only if `value`'s `Serialize` impl fails (e.g. a map with non-string keys), which is a
    /// programming error for a cursor type.
    pub fn encode<T: serde::Serialize>(&self, scope: &str, value: &T) -> String {
        let json = serde_json::to_vec(value).expect("cursor value serialises to JSON");
        let payload = URL_SAFE_NO_PAD.encode(json);
        let sig = URL_SAFE_NO_PAD.encode(self.mac(scope, &payload));
        format!("{payload}.{sig}")
    }

    /// Verifies `cursor` for `scope` (constant-time MAC comparison) and decodes its value.
    /// The signature is checked before the payload is decoded, so unsigned input never reaches serde.
    pub fn decode<T: serde::de::DeserializeOwned>(
        &self,
        scope: &str,
        cursor: &str,
    ) -> Result<T, CursorError> {
        if cursor.is_empty() || cursor.len() > MAX_CURSOR_LEN {
            return Err(CursorError::Malformed);
        }
        let (payload, sig) = cursor.split_once('.').ok_or(CursorError::Malformed)?;
        if payload.is_empty() || sig.contains('.') {
            return Err(CursorError::Malformed);
        }
        let given = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| CursorError::Malformed)?;
        if given.len() != MAC_LEN {
            return Err(CursorError::Malformed);
        }
        let expected = self.mac(scope, payload);
        if !bool::from(expected[..].ct_eq(&given[..])) {
            return Err(CursorError::BadSignature);
        }
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| CursorError::Malformed)?;
        serde_json::from_slice(&json).map_err(|_| CursorError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Pos {
        pk: String,
        sk: String,
        n: u32,
    }

    fn pos() -> Pos {
        Pos {
            pk: "inbox#leads#3".into(),
            sk: "2025-01-01T00:00:00Z#conv-42 ünïcödé".into(),
            n: 7,
        }
    }

    const SCOPE: &str = "conversations:leads";

    fn signer() -> CursorSigner {
        CursorSigner::new(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn round_trip() {
        let s = signer();
        let c = s.encode(SCOPE, &pos());
        assert_eq!(s.decode::<Pos>(SCOPE, &c), Ok(pos()));
        // Other types too.
        let c = s.encode("x", &42u64);
        assert_eq!(s.decode::<u64>("x", &c), Ok(42));
        let mut m = BTreeMap::new();
        m.insert("a".to_string(), vec![1, 2, 3]);
        let c = s.encode("x", &m);
        assert_eq!(s.decode::<BTreeMap<String, Vec<i32>>>("x", &c), Ok(m));
        let c = s.encode("x", &());
        assert_eq!(s.decode::<()>("x", &c), Ok(()));
    }

    #[test]
    fn cursor_is_url_safe_and_deterministic() {
        let s = signer();
        let c = s.encode(SCOPE, &pos());
        assert!(
            c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'),
            "{c}"
        );
        assert_eq!(c.matches('.').count(), 1);
        assert_eq!(c, s.encode(SCOPE, &pos()));
        // The signature part is a 32-byte MAC: 43 unpadded base64 characters.
        assert_eq!(c.split_once('.').unwrap().1.len(), 43);
    }

    #[test]
    fn format_matches_the_spec() {
        let s = signer();
        let c = s.encode("scope", &serde_json::json!({"k": 1}));
        let (payload, sig) = c.split_once('.').unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(payload).unwrap(), br#"{"k":1}"#);
        let mut mac = HmacSha256::new_from_slice(b"0123456789abcdef0123456789abcdef").unwrap();
        mac.update(format!("scope\n{payload}").as_bytes());
        assert_eq!(
            URL_SAFE_NO_PAD.decode(sig).unwrap(),
            mac.finalize().into_bytes().to_vec()
        );
    }

    #[test]
    fn other_scope_is_rejected() {
        let s = signer();
        let c = s.encode(SCOPE, &pos());
        assert_eq!(
            s.decode::<Pos>("conversations:contacts", &c),
            Err(CursorError::BadSignature)
        );
        assert_eq!(s.decode::<Pos>("", &c), Err(CursorError::BadSignature));
        // Scope/payload boundary cannot be shifted: "a\nb" + "c" vs "a" + "b\nc" style confusion.
        let c = s.encode("a", &1);
        assert_eq!(s.decode::<i32>("a\n", &c), Err(CursorError::BadSignature));
    }

    #[test]
    fn other_key_is_rejected() {
        let c = signer().encode(SCOPE, &pos());
        let other = CursorSigner::new(b"another key");
        assert_eq!(
            other.decode::<Pos>(SCOPE, &c),
            Err(CursorError::BadSignature)
        );
        let empty = CursorSigner::new(b"");
        assert_eq!(
            empty.decode::<Pos>(SCOPE, &c),
            Err(CursorError::BadSignature)
        );
    }

    #[test]
    fn tampered_payload_is_rejected() {
        let s = signer();
        let c = s.encode(SCOPE, &pos());
        let (_, sig) = c.split_once('.').unwrap();
        let mut forged = pos();
        forged.pk = "inbox#contacts#0".into();
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            s.decode::<Pos>(SCOPE, &format!("{forged_payload}.{sig}")),
            Err(CursorError::BadSignature)
        );
        // Flip every character of the payload in turn.
        let bytes = c.as_bytes();
        let dot = c.find('.').unwrap();
        for i in 0..dot {
            let mut b = bytes.to_vec();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let t = String::from_utf8(b).unwrap();
            if t == c {
                continue;
            }
            let r = s.decode::<Pos>(SCOPE, &t);
            assert!(
                matches!(
                    r,
                    Err(CursorError::BadSignature) | Err(CursorError::Malformed)
                ),
                "position {i}: {r:?}"
            );
        }
    }

    #[test]
    fn tampered_signature_is_rejected() {
        let s = signer();
        let c = s.encode(SCOPE, &pos());
        let dot = c.find('.').unwrap();
        // Change the first signature character (fully significant bits).
        let mut b = c.clone().into_bytes();
        b[dot + 1] = if b[dot + 1] == b'A' { b'B' } else { b'A' };
        let t = String::from_utf8(b).unwrap();
        assert_eq!(s.decode::<Pos>(SCOPE, &t), Err(CursorError::BadSignature));
        // Truncated or extended signature.
        assert_eq!(
            s.decode::<Pos>(SCOPE, &c[..c.len() - 4]),
            Err(CursorError::Malformed)
        );
        assert_eq!(
            s.decode::<Pos>(SCOPE, &format!("{c}AAAA")),
            Err(CursorError::Malformed)
        );
    }

    #[test]
    fn malformed_input_is_rejected() {
        let s = signer();
        let c = s.encode(SCOPE, &pos());
        let (payload, sig) = c.split_once('.').unwrap();
        for bad in [
            "".to_string(),
            ".".to_string(),
            "abc".to_string(),
            payload.to_string(),
            format!(".{sig}"),
            format!("{payload}."),
            format!("{payload}.{sig}.{sig}"),
            format!("{payload}.{}", &sig[..10]),
            format!("{payload}.!!!{}", &sig[3..]),
            format!("{payload}={sig}"),
            "x".repeat(MAX_CURSOR_LEN + 1),
        ] {
            assert_eq!(
                s.decode::<Pos>(SCOPE, &bad),
                Err(CursorError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn validly_signed_but_wrong_shape_is_malformed() {
        let s = signer();
        let c = s.encode(SCOPE, &"just a string");
        assert_eq!(s.decode::<Pos>(SCOPE, &c), Err(CursorError::Malformed));
        // Signed payload that is not base64/JSON (built by hand with the real key).
        let payload = "not*base64";
        let sig = URL_SAFE_NO_PAD.encode(s.mac(SCOPE, payload));
        assert_eq!(
            s.decode::<Pos>(SCOPE, &format!("{payload}.{sig}")),
            Err(CursorError::Malformed)
        );
    }

    #[test]
    fn debug_does_not_leak_the_key() {
        let dbg = format!("{:?}", CursorSigner::new(b"super-secret-key"));
        assert!(!dbg.contains("super"), "{dbg}");
    }
}
