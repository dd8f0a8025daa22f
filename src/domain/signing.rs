//! HMAC-SHA256: the one primitive behind resume links, derived keys and sandbox
//! webhook signatures. Verification goes through `Mac::verify_slice` (constant time).

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub type HmacSha256 = Hmac<Sha256>;

/// A MAC keyed with `key`. HMAC accepts keys of any length (RFC 2104 hashes long ones),
/// so the crate's `InvalidLength` error cannot occur for it.
pub fn mac(key: &[u8]) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"))
}

/// HMAC-SHA256 of the concatenated `parts`.
pub fn tag(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = mac(key);
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// Constant-time check of `given` against HMAC-SHA256 of `parts`.
pub fn verify(key: &[u8], parts: &[&[u8]], given: &[u8]) -> bool {
    let mut m = mac(key);
    for p in parts {
        m.update(p);
    }
    m.verify_slice(given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc_4231() {
        // Test case 2 (short key) and 6 (key longer than the block).
        assert_eq!(
            hex::encode(tag(b"Jefe", &[b"what do ya ", b"want for nothing?"])),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let long = tag(
            &[0xaa; 131],
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(
            hex::encode(long),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn verify_rejects_any_change() {
        let t = tag(b"k", &[b"a", b"b"]);
        assert!(verify(b"k", &[b"ab"], &t));
        assert!(!verify(b"k", &[b"ab "], &t));
        assert!(!verify(b"K", &[b"ab"], &t));
        assert!(!verify(b"k", &[b"ab"], &t[..31]));
        assert!(!verify(b"k", &[b"ab"], &[]));
    }
}
