//! The `<ts>=<unix>,v1=<hex>[,v1=<hex>…]` signature header that the sandbox, Stripe
//! (`t`) and Mercado Pago (`ts`) all use: parsed once here, checked in constant time.

use crate::domain::signing;

/// What a signature header carries: the timestamp exactly as sent (it is part of the
/// signed text), its value, and every readable `v1` digest.
#[derive(Debug)]
pub struct TimedSignature<'a> {
    pub ts: &'a str,
    pub unix: i64,
    pub v1: Vec<Vec<u8>>,
}

impl<'a> TimedSignature<'a> {
    /// None when the timestamp is missing, repeated or not a plain number, or when no
    /// `v1` is readable hex. Other schemes (`v0`, anything newer) are ignored, so a
    /// header cannot downgrade us to a weaker one.
    pub fn parse(header: &'a str, ts_key: &str) -> Option<Self> {
        let mut ts = None;
        let mut v1 = Vec::new();
        for (key, value) in header.split(',').filter_map(|part| part.split_once('=')) {
            let (key, value) = (key.trim(), value.trim());
            if key == ts_key {
                // Two timestamps make the signed text ambiguous: refuse rather than pick.
                if ts.replace(value).is_some() {
                    return None;
                }
            } else if key == "v1" {
                v1.extend(hex::decode(value).ok());
            }
        }
        let ts = ts.filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))?;
        let unix = ts.parse().ok()?;
        (!v1.is_empty()).then_some(Self { ts, unix, v1 })
    }

    /// True when any `v1` is the HMAC-SHA256 of `parts` under `key`. An empty key is a
    /// known key, so it never makes a signature valid.
    pub fn signed_with(&self, key: &[u8], parts: &[&[u8]]) -> bool {
        !key.is_empty() && self.v1.iter().any(|given| signing::verify(key, parts, given))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_timestamp_and_every_v1() {
        let s = TimedSignature::parse("t=17, v1=00ff ,v0=aa,v1=AB", "t").unwrap();
        assert_eq!((s.ts, s.unix), ("17", 17));
        assert_eq!(s.v1, vec![vec![0x00, 0xff], vec![0xab]]);
    }

    #[test]
    fn refuses_what_is_ambiguous_or_unreadable() {
        for bad in [
            "",
            "t=1",
            "v1=00",
            "t=,v1=00",
            "t=-1,v1=00",
            "t=1,t=1,v1=00",
            "t=1,v1=zz",
            "ts=1,v1=00",
        ] {
            assert!(TimedSignature::parse(bad, "t").is_none(), "{bad}");
        }
    }

    #[test]
    fn an_empty_key_never_verifies() {
        let tag = hex::encode(signing::tag(b"", &[b"x"]));
        let s = TimedSignature::parse(&format!("t=1,v1={tag}"), "t").map(|s| s.signed_with(b"", &[b"x"]));
        assert_eq!(s, Some(false));
    }
}
