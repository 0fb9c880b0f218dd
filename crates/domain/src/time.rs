//! Time. The fold never reads a clock: it is handed log time, the timestamp of the
//! record being folded, and keeps it monotonic. Wall-clock `occurred_at` values in
//! events are facts about the outside world, stored and reported, never used to
//! decide anything.

use std::fmt;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, in log time (Kafka record timestamps).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct LogTime(pub i64);

impl LogTime {
    /// Before any record: the log time of an empty ledger.
    pub const ORIGIN: LogTime = LogTime(0);

    pub fn from_millis(ms: i64) -> Self {
        LogTime(ms)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// `self + seconds`, saturating (log times are far from `i64::MAX`).
    pub fn plus_seconds(self, seconds: u32) -> LogTime {
        LogTime(self.0.saturating_add(i64::from(seconds) * 1_000))
    }

    pub fn minus_millis(self, ms: i64) -> LogTime {
        LogTime(self.0.saturating_sub(ms))
    }

    /// As a UTC date-time; `None` outside chrono's range.
    pub fn to_datetime(self) -> Option<DateTime<Utc>> {
        Utc.timestamp_millis_opt(self.0).single()
    }

    /// The UTC calendar day, as days since the Unix epoch (for daily counters).
    pub fn day_index(self) -> i64 {
        self.0.div_euclid(86_400_000)
    }
}

impl fmt::Debug for LogTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_datetime() {
            Some(dt) => write!(f, "LogTime({})", dt.format("%Y-%m-%dT%H:%M:%S%.3fZ")),
            None => write!(f, "LogTime({}ms)", self.0),
        }
    }
}

impl fmt::Display for LogTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_datetime() {
            Some(dt) => write!(f, "{}", dt.format("%Y-%m-%dT%H:%M:%S%.3fZ")),
            None => write!(f, "{}ms", self.0),
        }
    }
}

/// Serde for `DateTime<Utc>` fields of events: RFC 3339 text in human-readable
/// formats (JSON), a signed count of microseconds in binary ones (bincode), so the
/// Kafka records stay small and the JSON stays readable. Microseconds are the
/// precision of record: finer digits are truncated when decoding either form, so a
/// value survives JSON -> bincode -> JSON unchanged.
pub mod timestamp_serde {
    use chrono::{DateTime, SubsecRound, Utc};
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(value: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(&value.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        } else {
            s.serialize_i64(value.timestamp_micros())
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        if d.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            let parsed = DateTime::parse_from_rfc3339(&text).map_err(|e| {
                D::Error::custom(format!(
                    "expected an RFC 3339 date-time such as 2026-11-23T16:00:00Z, got {text:?}: {e}"
                ))
            })?;
            Ok(parsed.with_timezone(&Utc).trunc_subsecs(6))
        } else {
            let micros = i64::deserialize(d)?;
            DateTime::<Utc>::from_timestamp_micros(micros)
                .ok_or_else(|| D::Error::custom(format!("timestamp {micros}us is out of range")))
        }
    }
}

/// [`timestamp_serde`] for an optional timestamp (the same forms, inside
/// serde's `Option`).
pub mod optional_timestamp_serde {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    struct Borrowed<'a>(&'a DateTime<Utc>);

    impl Serialize for Borrowed<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            super::timestamp_serde::serialize(self.0, s)
        }
    }

    #[derive(Deserialize)]
    struct Owned(#[serde(with = "super::timestamp_serde")] DateTime<Utc>);

    pub fn serialize<S: Serializer>(
        value: &Option<DateTime<Utc>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        value.as_ref().map(Borrowed).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Ok(Option::<Owned>::deserialize(d)?.map(|owned| owned.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct At(#[serde(with = "timestamp_serde")] DateTime<Utc>);

    #[test]
    fn timestamps_are_text_in_json_and_truncated_to_micros() {
        let at: At =
            serde_json::from_str("\"2026-11-23T17:00:00.123456789+01:00\"").expect("parses");
        assert_eq!(
            serde_json::to_string(&at).expect("encodes"),
            "\"2026-11-23T16:00:00.123456Z\""
        );
        assert!(serde_json::from_str::<At>("\"yesterday\"").is_err());
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct MaybeAt(#[serde(with = "optional_timestamp_serde")] Option<DateTime<Utc>>);

    #[test]
    fn optional_timestamps_are_text_in_json() {
        let at = MaybeAt(Some(
            DateTime::parse_from_rfc3339("2026-11-23T16:00:00.123456Z")
                .expect("parses")
                .with_timezone(&Utc),
        ));
        let json = serde_json::to_string(&at).expect("encodes");
        assert_eq!(json, "\"2026-11-23T16:00:00.123456Z\"");
        assert_eq!(serde_json::from_str::<MaybeAt>(&json).expect("decodes"), at);
        assert_eq!(
            serde_json::to_string(&MaybeAt(None)).expect("encodes"),
            "null"
        );
    }

    #[test]
    fn log_time_days_and_arithmetic() {
        assert_eq!(LogTime(86_400_000).day_index(), 1);
        assert_eq!(LogTime(-1).day_index(), -1);
        assert_eq!(LogTime(1_000).plus_seconds(2), LogTime(3_000));
    }
}
