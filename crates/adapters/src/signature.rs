//! Webhook signatures: base64 of HMAC-SHA256 over the raw request body, as Shopify
//! (`X-Shopify-Hmac-Sha256`, keyed with the app's client secret) and WooCommerce
//! (`X-WC-Webhook-Signature`, keyed with the webhook's secret) both send them.
//!
//! Always over the raw bytes received, before any parsing: re-serialized JSON would
//! not be byte-identical. Compared in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is missing")]
    Missing,
    #[error("the signature is not base64 of a 32-byte HMAC-SHA256")]
    Malformed,
    #[error("the signature does not match the body")]
    Mismatch,
    #[error("no secret is configured to check signatures with")]
    NoSecret,
}

/// base64(HMAC-SHA256(body, secret)): what a sender puts in the header.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    STANDARD.encode(digest(secret, body))
}

fn digest(secret: &[u8], body: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Checks a header value against the body. The comparison of the digests takes the
/// same time wherever they differ.
pub fn verify(secret: &[u8], body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    if secret.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let header = header.map(str::trim).filter(|h| !h.is_empty());
    let Some(header) = header else {
        return Err(SignatureError::Missing);
    };
    let given = STANDARD
        .decode(header)
        .map_err(|_| SignatureError::Malformed)?;
    if given.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    let expected = digest(secret, body);
    if bool::from(expected.as_slice().ct_eq(given.as_slice())) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4231_test_case_2() {
        // HMAC-SHA256("Jefe", "what do ya want for nothing?")
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let hex: String = digest(b"Jefe", b"what do ya want for nothing?")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, expected);
    }

    #[test]
    fn signatures_verify_and_refuse() {
        let body = br#"{"id":820982911946154508}"#;
        let header = sign(b"hush", body);
        assert_eq!(verify(b"hush", body, Some(&header)), Ok(()));
        assert_eq!(
            verify(b"hush", b"{\"id\":1}", Some(&header)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", body, Some(&header)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify(b"hush", body, None), Err(SignatureError::Missing));
        assert_eq!(
            verify(b"hush", body, Some(" ")),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(b"hush", body, Some("not base64!")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(b"hush", body, Some("c2hvcnQ=")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(b"", body, Some(&header)),
            Err(SignatureError::NoSecret)
        );
    }
}
