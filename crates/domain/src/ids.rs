//! Identifiers. Every identifier is a validated, cheaply clonable string.
//!
//! Identifiers are chosen by the outside world (a SKU from the catalogue, an order id
//! from the shop, a hold id from the channel), so they are validated when they are
//! decoded: "parse, don't validate". A value of one of these types is always
//! 1..=[`ID_LEN_MAX`] bytes of printable ASCII without whitespace. That keeps storage
//! keys simple (no byte below 0x21 ever appears in an id, so 0x00 can separate key
//! parts) and error messages printable.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Longest identifier accepted, in bytes.
pub const ID_LEN_MAX: usize = 128;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} is empty")]
    Empty { kind: &'static str },
    #[error("{kind} is {len_bytes} bytes long; the limit is {ID_LEN_MAX}")]
    TooLong {
        kind: &'static str,
        len_bytes: usize,
    },
    #[error(
        "{kind} contains {found:?} at byte {index}; identifiers are printable ASCII without spaces"
    )]
    BadCharacter {
        kind: &'static str,
        found: char,
        index: usize,
    },
}

/// Checks the identifier rules shared by every id type.
pub fn check_id(kind: &'static str, value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if value.len() > ID_LEN_MAX {
        return Err(IdError::TooLong {
            kind,
            len_bytes: value.len(),
        });
    }
    // Byte by byte (every id of every decoded event and row passes here): the
    // first byte that is not printable ASCII starts the offending character, as
    // every byte before it is ASCII.
    match value.bytes().position(|b| !b.is_ascii_graphic()) {
        None => Ok(()),
        Some(index) => Err(IdError::BadCharacter {
            kind,
            found: value[index..].chars().next().unwrap_or('\0'),
            index,
        }),
    }
}

/// `a.cmp(b)` for byte strings, eight bytes at a time: ids are short, and a call to
/// `memcmp` per comparison was the largest single cost of the fold's map lookups.
#[inline]
fn compare_bytes(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let common = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= common {
        let x = u64::from_be_bytes(a[i..i + 8].try_into().expect("eight bytes"));
        let y = u64::from_be_bytes(b[i..i + 8].try_into().expect("eight bytes"));
        if x != y {
            return x.cmp(&y);
        }
        i += 8;
    }
    while i < common {
        if a[i] != b[i] {
            return a[i].cmp(&b[i]);
        }
        i += 1;
    }
    a.len().cmp(&b.len())
}

/// The first eight bytes of an id as a big-endian integer, zero-padded. Ids contain
/// no zero byte (they are printable ASCII), so when the prefixes of two ids differ,
/// the ids compare as their prefixes do; when they are equal, the ids must still be
/// compared (unless both are at most eight bytes long: then they are equal).
#[inline]
pub(crate) fn prefix64(bytes: &[u8]) -> u64 {
    if let Some(head) = bytes.first_chunk::<8>() {
        return u64::from_be_bytes(*head);
    }
    let mut word = 0u64;
    for (i, byte) in bytes.iter().enumerate() {
        word |= u64::from(*byte) << (56 - 8 * i);
    }
    word
}

/// [`prefix64`] over sixteen bytes. Zero padding keeps the order of any byte
/// strings, ids or not: where two prefixes differ, the strings compare as their
/// prefixes do, so a sort can compare these integers first and the bytes only
/// where they tie (the fold's dirty keys, the store's row keys).
#[inline]
pub fn prefix128(bytes: &[u8]) -> u128 {
    let high = prefix64(bytes);
    let low = bytes.get(8..).map_or(0, prefix64);
    (u128::from(high) << 64) | u128::from(low)
}

/// Ids decoded recently on this thread, for the id types with few distinct
/// values (SKUs, locations, channels): decoding one of those again hands out the
/// same string instead of checking and allocating a new one. Every event names a
/// channel, most a location and a SKU. Measured: -2.5% of a replay's
/// instructions, most of it after decoding: equal ids sharing one string
/// compare by pointer (the `Arc::ptr_eq` test of `Eq` and `Ord`).
///
/// A direct-mapped cache: the slot is the id's hash; a different id in the slot
/// is replaced. Sharing a string is invisible (ids compare by content), so this
/// changes no result, only what is allocated. It holds at most `slots` ids per
/// thread and type, never more.
pub(crate) struct RecentIds {
    slots: Vec<Option<Arc<str>>>,
}

impl RecentIds {
    /// `slots`: a power of two.
    pub(crate) fn new(slots: usize) -> RecentIds {
        assert!(
            slots.is_power_of_two(),
            "slots of a RecentIds: a power of two"
        );
        RecentIds {
            slots: vec![None; slots],
        }
    }

    /// The string handed out earlier on this thread whose bytes these are, if
    /// it is still in its slot.
    #[inline]
    pub(crate) fn get(&self, bytes: &[u8]) -> Option<Arc<str>> {
        self.slots[Self::slot_index(self.slots.len(), bytes)]
            .as_ref()
            .filter(|recent| recent.as_bytes() == bytes)
            .map(Arc::clone)
    }

    #[inline]
    fn slot_index(slots: usize, bytes: &[u8]) -> usize {
        use std::hash::Hasher;
        let mut hasher = crate::hash::IdHasher::default();
        hasher.write(bytes);
        // Masked to the slot count: the truncation keeps the low bits, which
        // are the ones used.
        #[allow(clippy::cast_possible_truncation)]
        let index = (hasher.finish() as usize) & (slots - 1);
        index
    }

    /// `value` checked as an id of `kind` and shared, or the same string handed
    /// out earlier on this thread.
    pub(crate) fn get_or_check(
        &mut self,
        kind: &'static str,
        value: &str,
    ) -> Result<Arc<str>, IdError> {
        let index = Self::slot_index(self.slots.len(), value.as_bytes());
        let slot = &mut self.slots[index];
        if let Some(recent) = slot
            && recent.as_bytes() == value.as_bytes()
        {
            return Ok(Arc::clone(recent));
        }
        check_id(kind, value)?;
        let id: Arc<str> = Arc::from(value);
        *slot = Some(Arc::clone(&id));
        Ok(id)
    }
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        id_type!($(#[$meta])* $name, $kind, recent_ids = 0);
    };
    ($(#[$meta:meta])* $name:ident, $kind:literal, recent_ids = $recent_ids:literal) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(Arc<str>);

        // As a string. Written by hand rather than `#[serde(into = "String")]`,
        // which copied every id into a fresh `String` to serialize it: ids are most
        // of what the projector encodes (history rows, holds).
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        // Validated as [`Self::new`]; from a borrowed `str` where the format lends
        // one, without the intermediate `String` of `#[serde(try_from = "String")]`.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct IdVisitor;
                impl serde::de::Visitor<'_> for IdVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "a {} (a string)", $kind)
                    }
                    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<$name, E> {
                        $name::decoded(value).map_err(E::custom)
                    }
                    fn visit_string<E: serde::de::Error>(self, value: String) -> Result<$name, E> {
                        $name::try_from(value).map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(IdVisitor)
            }
        }

        // Byte-wise, as `str` compares; inline and with a shortcut for two handles
        // to the same string, because ids are the keys of every map of the ledger.
        impl PartialEq for $name {
            #[inline]
            fn eq(&self, other: &Self) -> bool {
                Arc::ptr_eq(&self.0, &other.0) || self.0.as_bytes() == other.0.as_bytes()
            }
        }

        impl Eq for $name {}

        // As derived: the hash of the string, consistent with the equality above.
        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.0.hash(state);
            }
        }

        impl PartialOrd for $name {
            #[inline]
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            #[inline]
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                if Arc::ptr_eq(&self.0, &other.0) {
                    return std::cmp::Ordering::Equal;
                }
                compare_bytes(self.0.as_bytes(), other.0.as_bytes())
            }
        }

        impl $name {
            /// What this identifier is called in error messages.
            pub const KIND: &'static str = $kind;

            /// Validates and wraps `value`.
            pub fn new(value: impl AsRef<str>) -> Result<Self, IdError> {
                let value = value.as_ref();
                check_id($kind, value)?;
                Ok(Self(Arc::from(value)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Ids of this type each thread remembers having decoded (see
            /// [`RecentIds`]); 0: none, every decoded id is checked.
            const RECENT_IDS: usize = $recent_ids;

            /// [`Self::new`] for a decoded string (serde's and the wire crate's
            /// event decoders): through this thread's [`RecentIds`] where the
            /// type has one.
            pub fn decoded(value: &str) -> Result<Self, IdError> {
                if Self::RECENT_IDS == 0 {
                    return Self::new(value);
                }
                Self::with_recent_ids(|recent| recent.get_or_check($kind, value)).map(Self)
            }

            /// Lends this thread's [`RecentIds`] of this type (of the types that
            /// have one: never called for the others).
            fn with_recent_ids<R>(lend: impl FnOnce(&mut RecentIds) -> R) -> R {
                thread_local! {
                    static RECENT: std::cell::RefCell<RecentIds> =
                        std::cell::RefCell::new(RecentIds::new($name::RECENT_IDS.max(1)));
                }
                RECENT.with(|recent| lend(&mut recent.borrow_mut()))
            }

            /// The id whose string has these bytes if this thread decoded it
            /// recently (see [`RecentIds`]): a decoder that holds bytes
            /// recognizes an id without checking them, or converting them to
            /// text, again. `None` otherwise, and always for types without a
            /// cache: decode the text, then [`Self::decoded`].
            #[inline]
            pub fn recent(bytes: &[u8]) -> Option<Self> {
                if Self::RECENT_IDS == 0 {
                    return None;
                }
                Self::with_recent_ids(|recent| recent.get(bytes)).map(Self)
            }

            /// See [`prefix64`]. (Not every id type is sorted or searched by it.)
            #[inline]
            #[allow(dead_code)]
            pub(crate) fn prefix64(&self) -> u64 {
                prefix64(self.0.as_bytes())
            }

            /// See [`prefix128`].
            #[inline]
            #[allow(dead_code)]
            pub(crate) fn prefix128(&self) -> u128 {
                prefix128(self.0.as_bytes())
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                check_id($kind, &value)?;
                Ok(Self(Arc::from(value)))
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(value: &str) -> Result<Self, IdError> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0.as_ref().to_owned()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        #[cfg(feature = "json-schema")]
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "description": concat!(
                        "A ", $kind, ": 1 to 128 bytes of printable ASCII, no spaces."
                    ),
                    "minLength": 1,
                    "maxLength": ID_LEN_MAX,
                    "pattern": "^[!-~]+$",
                })
            }
        }
    };
}

id_type!(
    /// A stock keeping unit: the thing that is counted. Every event that changes a
    /// SKU's quantities is keyed by it, so one Kafka partition orders all of them.
    Sku,
    "SKU",
    // A partition's SKUs: a worker folds one partition at a time.
    recent_ids = 1024
);
id_type!(
    /// A store, warehouse or partner location where stock physically is.
    LocationId,
    "location id",
    recent_ids = 256
);
id_type!(
    /// A named set of locations ("stores in Lyon"), used by "any location of group G".
    GroupId,
    "group id"
);
id_type!(
    /// A sales or system channel: `web`, `app`, `pos`, `marketplace`, `kiosk`, ...
    ChannelId,
    "channel id",
    recent_ids = 64
);
id_type!(
    /// A hold (reservation) id, chosen by the channel that requests it.
    HoldId,
    "hold id"
);
id_type!(
    /// An order id in the selling channel's system.
    OrderId,
    "order id"
);
id_type!(
    /// A customer reference the store can look up at the desk (loyalty card, email,
    /// reservation code). Opaque to Stockline.
    CustomerRef,
    "customer reference"
);
id_type!(
    /// The id of a source document: order, purchase order, transfer, till receipt...
    DocumentId,
    "document id"
);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn ids_accept_printable_ascii_and_reject_the_rest() {
        assert!(Sku::new("SOFA-GREY-3P").is_ok());
        assert!(CustomerRef::new("jane+loyalty@example.com").is_ok());
        assert_eq!(Sku::new(""), Err(IdError::Empty { kind: "SKU" }));
        assert_eq!(
            Sku::new("two words"),
            Err(IdError::BadCharacter {
                kind: "SKU",
                found: ' ',
                index: 3
            })
        );
        // The whole character, not its first byte.
        assert_eq!(
            LocationId::new("caf\u{e9}-2"),
            Err(IdError::BadCharacter {
                kind: "location id",
                found: '\u{e9}',
                index: 3
            })
        );
        assert!(matches!(
            Sku::new("tab\there"),
            Err(IdError::BadCharacter {
                found: '\t',
                index: 3,
                ..
            })
        ));
        let long = "x".repeat(ID_LEN_MAX + 1);
        assert!(matches!(
            OrderId::new(&long),
            Err(IdError::TooLong { len_bytes: 129, .. })
        ));
        assert!(OrderId::new("x".repeat(ID_LEN_MAX)).is_ok());
    }

    #[test]
    fn prefixes_order_like_the_ids_when_they_differ() {
        let ids = [
            "!",
            "a",
            "a!",
            "ab",
            "abcdefg",
            "abcdefgh",
            "abcdefgh!",
            "abcdefgi",
            "b",
            "~",
            "abcdefghijklmnop",
            "abcdefghijklmnoq",
            "abcdefghijklmnop!",
        ];
        for a in ids {
            for b in ids {
                let (x, y) = (Sku::new(a).expect("valid"), Sku::new(b).expect("valid"));
                if x.prefix64() != y.prefix64() {
                    assert_eq!(x.prefix64().cmp(&y.prefix64()), a.cmp(b), "{a} {b}");
                } else if a.len() <= 8 && b.len() <= 8 {
                    assert_eq!(a, b);
                }
                if x.prefix128() != y.prefix128() {
                    assert_eq!(x.prefix128().cmp(&y.prefix128()), a.cmp(b), "{a} {b}");
                } else if a.len() <= 16 && b.len() <= 16 {
                    assert_eq!(a, b);
                }
            }
        }
    }

    #[test]
    fn ids_are_validated_when_decoded() {
        let sku: Result<Sku, _> = serde_json::from_str("\"A B\"");
        assert!(sku.is_err());
        let sku: Sku = serde_json::from_str("\"AB-1\"").expect("valid sku decodes");
        assert_eq!(sku.as_str(), "AB-1");
        assert_eq!(serde_json::to_string(&sku).expect("encodes"), "\"AB-1\"");
    }

    #[test]
    fn recently_decoded_ids_are_shared_and_still_checked() {
        let first: Sku = serde_json::from_str("\"SHARED-1\"").expect("decodes");
        let again: Sku = serde_json::from_str("\"SHARED-1\"").expect("decodes");
        assert!(
            Arc::ptr_eq(&first.0, &again.0),
            "the same string handed out"
        );
        // Ids without a cache are allocated each time.
        let hold: HoldId = serde_json::from_str("\"H-1\"").expect("decodes");
        let hold_again: HoldId = serde_json::from_str("\"H-1\"").expect("decodes");
        assert!(!Arc::ptr_eq(&hold.0, &hold_again.0));
        // A bad id is refused every time, and a cached one is never confused with
        // one that only shares its slot.
        for _ in 0..2 {
            let bad: Result<Sku, _> = serde_json::from_str("\"SHARED 1\"");
            assert!(bad.is_err());
        }
        let mut recent = RecentIds::new(1);
        let a = recent.get_or_check("SKU", "A").expect("valid");
        let b = recent.get_or_check("SKU", "B").expect("valid");
        assert_eq!((&*a, &*b), ("A", "B"));
        assert!(recent.get_or_check("SKU", "").is_err());
        assert_eq!(&*recent.get_or_check("SKU", "A").expect("valid"), "A");
    }

    #[test]
    fn recent_ids_are_recognized_by_their_bytes() {
        assert!(Sku::recent(b"RECENT-1").is_none(), "not decoded yet");
        let decoded = Sku::decoded("RECENT-1").expect("valid");
        let recognized = Sku::recent(b"RECENT-1").expect("decoded recently");
        assert!(Arc::ptr_eq(&decoded.0, &recognized.0));
        // Only what was decoded (and so checked): not a bad id, nor its prefix.
        assert!(Sku::decoded("RECENT 2").is_err());
        assert!(Sku::recent(b"RECENT 2").is_none());
        assert!(Sku::recent(b"RECENT-").is_none());
        // Types without a cache recognize nothing.
        let _ = HoldId::decoded("H-RECENT").expect("valid");
        assert!(HoldId::recent(b"H-RECENT").is_none());
    }

    proptest! {
        /// The store sorts row keys (ids joined by zero bytes) on `prefix128`
        /// first: differing prefixes order any byte strings as the bytes do.
        #[test]
        fn prefix128_orders_any_bytes_where_prefixes_differ(
            a in proptest::collection::vec(0u8..4, 0..20),
            b in proptest::collection::vec(0u8..4, 0..20),
        ) {
            let (x, y) = (prefix128(&a), prefix128(&b));
            if x != y {
                prop_assert_eq!(x.cmp(&y), a.cmp(&b));
            }
        }

        /// Decoding through the per-thread cache gives the id `new` gives, for
        /// any string, valid or not, in any order (few letters: strings repeat).
        #[test]
        fn decoding_through_recent_ids_equals_new(values in proptest::collection::vec("[AB é]{0,3}", 1..60)) {
            let mut recent = RecentIds::new(4);
            for value in &values {
                let direct = Sku::new(value).map(|sku| sku.as_str().to_owned());
                let cached = recent.get_or_check(Sku::KIND, value).map(|id| id.to_string());
                prop_assert_eq!(&direct, &cached);
                // What `get` recognizes afterwards is exactly what was decoded.
                let recognized = recent.get(value.as_bytes()).map(|id| id.to_string());
                prop_assert_eq!(recognized, direct.ok());
            }
        }
    }
}
