//! What crosses our edge from outside: how long a vendor's strings may be, how they are made
//! storable, and the shape of the ids we mint, so anything else is refused before the
//! database is asked. Caps count chars, and are generous: they bound abuse, not real vendors.

use std::borrow::Cow;

/// A webhook's deduplication key, as the adapter derives it. Stripe's `evt_` ids are about
/// 30 chars; Wompi's and Mercado Pago's keys join a few vendor fields (under 150 in
/// practice). Longer is not a real vendor's event, so it is refused, not cut: two cut keys
/// could collide and drop a real update as a duplicate.
pub const EVENT_ID_MAX_CHARS: usize = 512;
/// The gateway's id for a payment (Wompi `1234-1610641025-49201`, Stripe `cs_...`, Mercado
/// Pago numeric or `209521005-3e33f6a8-...`). Stripe bounds its ids at 255.
pub const GATEWAY_REF_MAX_CHARS: usize = 255;
/// Our attempt id as the gateway echoes it back (Stripe's `client_reference_id` holds up
/// to 200, Mercado Pago's `external_reference` 256). Ours are 36; a longer one is somebody
/// else's and is kept cut, so it still names no attempt of ours.
pub const REFERENCE_MAX_CHARS: usize = 256;
/// The gateway's own status words kept on the attempt for operators; enough to see why.
pub const STATUS_DETAIL_MAX_CHARS: usize = 200;
/// A currency code as the gateway reports it (ISO 4217 has 3 letters); only ever compared.
pub const CURRENCY_MAX_CHARS: usize = 8;
/// A hosted checkout URL the gateway gave us (we store it and send browsers to it).
pub const CHECKOUT_URL_MAX_CHARS: usize = 4096;
/// A resume link's token: a few hundred chars of base64url.
pub const RESUME_TOKEN_MAX_CHARS: usize = 1024;

/// Text as PostgreSQL's TEXT can hold it: U+0000 is the one char it refuses (any other
/// Rust string is valid UTF-8), so it becomes U+FFFD, visibly not what was sent. SQLite
/// would keep it; replacing it on both keeps the backends alike.
pub fn storable(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// At most `max` chars, cut on a char boundary.
pub fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// True when `text` is longer than `max` chars.
pub fn longer_than(text: &str, max: usize) -> bool {
    text.chars().nth(max).is_some()
}

/// An id leadgate minted (`clock::new_id`): UUIDv7 in its canonical lowercase hyphenated
/// text. Anything else cannot be one of our rows, whatever bytes it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintedId(String);

impl MintedId {
    pub fn parse(text: &str) -> Option<MintedId> {
        // 36 chars exactly: also keeps a huge input from being parsed at all.
        if text.len() != 36 {
            return None;
        }
        let id = uuid::Uuid::try_parse(text).ok()?;
        let canonical = id.hyphenated().to_string();
        (id.get_version_num() == 7 && canonical == text).then_some(MintedId(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A checkout attempt's id, as a browser or gateway hands it back to us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptId(MintedId);

impl AttemptId {
    pub fn parse(text: &str) -> Option<AttemptId> {
        MintedId::parse(text).map(AttemptId)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Could be a resume token (`base64url.base64url`): the alphabet and a sane length. Only
/// the signature says whether it is one; this keeps garbage a plain not-found.
pub fn resume_token_shaped(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= RESUME_TOKEN_MAX_CHARS
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_becomes_a_visible_replacement_and_nothing_else_changes() {
        assert_eq!(storable("a\0b\0"), "a\u{FFFD}b\u{FFFD}");
        assert!(matches!(storable("ação ✓"), Cow::Borrowed("ação ✓")));
    }

    #[test]
    fn truncation_counts_chars_and_never_splits_one() {
        assert_eq!(truncate_chars("ñandú", 3), "ñan");
        assert_eq!(truncate_chars("ñandú", 5), "ñandú");
        assert_eq!(truncate_chars("ñandú", 50), "ñandú");
        assert_eq!(truncate_chars("😀😀", 1), "😀");
        assert!(longer_than("abc", 2) && !longer_than("abc", 3));
    }

    #[test]
    fn only_our_own_ids_parse() {
        let ours = crate::clock::new_id();
        assert_eq!(
            AttemptId::parse(&ours).map(|a| a.as_str().to_owned()),
            Some(ours.clone())
        );
        let upper = ours.to_uppercase();
        let v4 = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
        let nul = format!("{}\0", &ours[..35]);
        let simple = uuid::Uuid::now_v7().simple().to_string();
        for bad in ["", "nope", "\0", upper.as_str(), v4, nul.as_str(), simple.as_str()] {
            assert_eq!(AttemptId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn resume_tokens_are_shaped_before_they_are_verified() {
        assert!(resume_token_shaped("eyJh_b-c.ZGVm"));
        assert!(resume_token_shaped("not-a-token"));
        for bad in ["", "a\0b", "../etc", "a b", "ñ"] {
            assert!(!resume_token_shaped(bad), "{bad:?}");
        }
        assert!(!resume_token_shaped(&"a".repeat(RESUME_TOKEN_MAX_CHARS + 1)));
    }
}
