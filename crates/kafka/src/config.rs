//! Settings of the Kafka connection, shared by every component that produces
//! or consumes.
//!
//! Deserialised from the service configuration; every field has a documented
//! default so an empty section means "embedded broker, 8 partitions".

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::brokers::Brokers;

/// Default number of partitions of the topics Stockline creates.
pub const DEFAULT_PARTITIONS: u32 = 8;
/// Default bound on records handed to librdkafka and not yet acknowledged.
pub const DEFAULT_MAX_IN_FLIGHT_RECORDS: usize = 10_000;
/// Default bound on the bytes librdkafka buffers for the producer (64 MiB).
pub const DEFAULT_MAX_BUFFERED_KBYTES: u32 = 64 * 1024;

/// How to reach Kafka and how Stockline's topics look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSettings {
    /// `bootstrap.servers` of an external cluster (`host:port,host:port`).
    /// `None` (the default) runs librdkafka's in-process mock cluster; see
    /// [`crate::embedded::EmbeddedBroker`] for its limits.
    pub brokers: Option<String>,
    /// librdkafka properties passed through verbatim to every producer,
    /// consumer and admin client (`security.protocol`, `sasl.mechanism`,
    /// `sasl.username`, `ssl.ca.location`, ...). They may override tuning
    /// defaults, but not the properties Stockline's correctness relies on
    /// (idempotence, `acks`, offset handling): those are rejected with
    /// [`ConfigError::ReservedProperty`]. Default: empty.
    pub properties: BTreeMap<String, String>,
    /// Topic names. Default: `stockline.events`, `stockline.dead-letters`,
    /// `stockline.notifications`.
    pub topics: TopicNames,
    /// Partitions of the topics Stockline creates, and the partition count
    /// every component uses to place keys. Default: 8.
    pub partitions: u32,
    /// Replication factor used when creating topics on an external cluster.
    /// Default: 1 (3 is the usual production value). Ignored by the embedded
    /// broker, which has a single broker.
    pub replication_factor: u16,
    /// Bound on records a [`crate::producer::RecordProducer`] has handed to
    /// librdkafka and not yet seen acknowledged; a sender waits for a slot
    /// beyond it. Default: 10,000.
    pub max_in_flight_records: usize,
    /// Bound on the bytes librdkafka buffers for one producer
    /// (`queue.buffering.max.kbytes`). Default: 65,536 (64 MiB).
    pub max_buffered_kbytes: u32,
    /// How long librdkafka keeps retrying one record before reporting it
    /// failed (`message.timeout.ms`). Default: 30,000.
    pub delivery_timeout_ms: u64,
    /// Bound on metadata, watermark and admin requests. Default: 10,000.
    pub request_timeout_ms: u64,
    /// `client.id` prefix shown in broker logs. Default: `stockline`.
    pub client_id: String,
    /// Treat the broker's ListOffsets answers as lower bounds and confirm
    /// high watermarks by reading the partitions' tails (500 ms more per
    /// query). Default: false, right for Apache Kafka and the embedded
    /// broker. tansu 0.6.0 needs true: it answers ListOffsets with the
    /// newest batch's base offset + 1, ignoring the batch's other records.
    pub verify_high_watermarks_by_reading: bool,
    /// Longest a consumer's fetch may wait on the broker for records
    /// (`fetch.wait.max.ms`). `None` (the default): 100 ms on an external
    /// cluster, 1 ms on the embedded broker. Apache Kafka answers as soon as
    /// records are there, so the value only bounds an idle fetch. tansu 0.6.0
    /// and the embedded mock cluster hold every fetch for the whole wait, data
    /// or not: with them the wait bounds both the latency of the log's tail and
    /// (a fetch returns at most 5 MiB on tansu) the rate of catching up. Use
    /// [`crate::tansu::TANSU_FETCH_WAIT_MAX_MS`] with tansu. A
    /// `fetch.wait.max.ms` in `properties` overrides this.
    pub fetch_wait_max_ms: Option<u64>,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            brokers: None,
            properties: BTreeMap::new(),
            topics: TopicNames::default(),
            partitions: DEFAULT_PARTITIONS,
            replication_factor: 1,
            max_in_flight_records: DEFAULT_MAX_IN_FLIGHT_RECORDS,
            max_buffered_kbytes: DEFAULT_MAX_BUFFERED_KBYTES,
            delivery_timeout_ms: 30_000,
            request_timeout_ms: 10_000,
            client_id: "stockline".to_owned(),
            verify_high_watermarks_by_reading: false,
            fetch_wait_max_ms: None,
        }
    }
}

/// Names of Stockline's topics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicNames {
    /// Every stock and order event, keyed by SKU. Default: `stockline.events`.
    pub events: String,
    /// Records that could not be decoded or applied, with their origin.
    /// Default: `stockline.dead-letters`.
    pub dead_letters: String,
    /// Notifications for other systems (back in stock, pickup ready...).
    /// Default: `stockline.notifications`.
    pub notifications: String,
}

impl Default for TopicNames {
    fn default() -> Self {
        Self {
            events: "stockline.events".to_owned(),
            dead_letters: "stockline.dead-letters".to_owned(),
            notifications: "stockline.notifications".to_owned(),
        }
    }
}

/// A settings value that cannot work.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// A pass-through property tries to change something Stockline relies on.
    #[error(
        "kafka property `{key}` = `{value}` is not allowed: Stockline sets it to `{required}` \
         because {why}"
    )]
    ReservedProperty {
        key: String,
        value: String,
        required: String,
        why: &'static str,
    },
    /// A numeric setting is out of range.
    #[error("invalid kafka setting `{name}`: {why}")]
    Invalid { name: &'static str, why: String },
}

/// A property Stockline sets itself, with the reason it must have that value.
pub(crate) struct Reserved<'a> {
    pub key: &'static str,
    pub value: &'a str,
    pub why: &'static str,
}

/// `fetch.wait.max.ms` of consumers on the embedded broker unless the
/// settings say otherwise. librdkafka's mock cluster answers a fetch that
/// finds no new data only after the whole wait, even if records are produced
/// meanwhile (rdkafka_mock_handlers.c: "we should cut the wait short [...] but
/// that is too much of a hassle"). With 100 ms, the tail of the log, hence a
/// hold's decision, was seen up to 100 ms late. An empty in-process fetch every
/// millisecond costs about 4% of a core at rest; 1 ms rather than 2 ms takes
/// about 1 ms off a hold's decision (docs/benchmarks.md).
const EMBEDDED_FETCH_WAIT_MS: u64 = 1;

/// `fetch.wait.max.ms` of consumers on an external cluster unless the
/// settings say otherwise. Apache Kafka answers as soon as `fetch.min.bytes`
/// (1) is there, so this only bounds a fetch on an idle partition: the
/// broker's request is not held open longer than 100 ms (librdkafka's default
/// is 500).
const CLUSTER_FETCH_WAIT_MS: u64 = 100;

/// librdkafka's maximum for `fetch.wait.max.ms`.
const FETCH_WAIT_MAX_MS_MAX: u64 = 300_000;

impl KafkaSettings {
    /// Settings for a tansu 0.6.0 broker at `bootstrap_servers`, with the
    /// workarounds for its deviations from Kafka (crates/kafka/README.md):
    /// watermarks confirmed by reading, and a short fetch wait
    /// ([`crate::tansu::TANSU_FETCH_WAIT_MAX_MS`]). The rest are defaults.
    #[must_use]
    pub fn for_tansu(bootstrap_servers: &str) -> KafkaSettings {
        KafkaSettings {
            brokers: Some(bootstrap_servers.to_owned()),
            verify_high_watermarks_by_reading: true,
            fetch_wait_max_ms: Some(crate::tansu::TANSU_FETCH_WAIT_MAX_MS),
            ..KafkaSettings::default()
        }
    }

    /// The `fetch.wait.max.ms` consumers of `brokers` use: `fetch_wait_max_ms`,
    /// else the broker kind's default (a `fetch.wait.max.ms` in `properties`
    /// still overrides it in the client's configuration).
    #[must_use]
    pub fn fetch_wait_ms(&self, brokers: &Brokers) -> u64 {
        self.fetch_wait_max_ms.unwrap_or(if brokers.is_embedded() {
            EMBEDDED_FETCH_WAIT_MS
        } else {
            CLUSTER_FETCH_WAIT_MS
        })
    }

    /// Checks the numeric settings.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for a zero partition count, replication
    /// factor or in-flight bound, a partition count above `i32::MAX`, or a
    /// fetch wait outside 1..=300,000 ms.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.partitions == 0 || i32::try_from(self.partitions).is_err() {
            return Err(ConfigError::Invalid {
                name: "partitions",
                why: format!("must be between 1 and {}", i32::MAX),
            });
        }
        if self.replication_factor == 0 {
            return Err(ConfigError::Invalid {
                name: "replication_factor",
                why: "must be at least 1".to_owned(),
            });
        }
        if self.max_in_flight_records == 0 || self.max_in_flight_records > 10_000_000 {
            // librdkafka caps `queue.buffering.max.messages` at 2^31-1 but
            // its documented maximum is 2,147,483,647; 10M keeps memory sane.
            return Err(ConfigError::Invalid {
                name: "max_in_flight_records",
                why: "must be between 1 and 10,000,000".to_owned(),
            });
        }
        if self.max_buffered_kbytes == 0 || self.max_buffered_kbytes > 2_147_483_647 {
            return Err(ConfigError::Invalid {
                name: "max_buffered_kbytes",
                why: "must be between 1 and 2,147,483,647".to_owned(),
            });
        }
        if let Some(wait_ms) = self.fetch_wait_max_ms
            && !(1..=FETCH_WAIT_MAX_MS_MAX).contains(&wait_ms)
        {
            // 0 would make a consumer of tansu or of the embedded broker (both
            // hold a fetch for the whole wait) fetch in a busy loop; librdkafka
            // refuses more than 300,000.
            return Err(ConfigError::Invalid {
                name: "fetch_wait_max_ms",
                why: format!("must be between 1 and {FETCH_WAIT_MAX_MS_MAX}"),
            });
        }
        Ok(())
    }

    /// Builds a librdkafka configuration: `tuning` first, then the
    /// pass-through `properties` (which may override tuning), then the
    /// `reserved` properties, which a pass-through property may only repeat.
    pub(crate) fn client_config(
        &self,
        bootstrap_servers: &str,
        client_id_suffix: &str,
        tuning: &[(&str, String)],
        reserved: &[Reserved<'_>],
    ) -> Result<ClientConfig, ConfigError> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", bootstrap_servers);
        config.set(
            "client.id",
            format!("{}-{client_id_suffix}", self.client_id),
        );
        for (key, value) in tuning {
            config.set(*key, value.as_str());
        }
        for (key, value) in &self.properties {
            if key == "bootstrap.servers" {
                // The broker list comes from `brokers` (or the embedded
                // broker); a second source of truth would only confuse.
                return Err(ConfigError::ReservedProperty {
                    key: key.clone(),
                    value: value.clone(),
                    required: "the `brokers` setting".to_owned(),
                    why: "the broker list has a setting of its own",
                });
            }
            if let Some(r) = reserved.iter().find(|r| r.key == key)
                && r.value != value
            {
                return Err(ConfigError::ReservedProperty {
                    key: key.clone(),
                    value: value.clone(),
                    required: r.value.to_owned(),
                    why: r.why,
                });
            }
            config.set(key.as_str(), value.as_str());
        }
        for r in reserved {
            config.set(r.key, r.value);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_documented_values() {
        let s = KafkaSettings::default();
        assert_eq!(s.brokers, None);
        assert_eq!(s.partitions, 8);
        assert_eq!(s.replication_factor, 1);
        assert_eq!(s.max_in_flight_records, 10_000);
        assert_eq!(s.topics.events, "stockline.events");
        assert!(s.validate().is_ok());
    }

    #[test]
    fn reserved_properties_cannot_be_overridden() {
        let mut s = KafkaSettings::default();
        s.properties.insert("acks".to_owned(), "1".to_owned());
        let reserved = [Reserved {
            key: "acks",
            value: "all",
            why: "test",
        }];
        let err = s
            .client_config("localhost:9092", "t", &[], &reserved)
            .expect_err("acks=1 must be refused");
        assert!(matches!(err, ConfigError::ReservedProperty { .. }), "{err}");

        // Repeating the required value is fine.
        s.properties.insert("acks".to_owned(), "all".to_owned());
        let config = s
            .client_config("localhost:9092", "t", &[], &reserved)
            .expect("same value accepted");
        assert_eq!(config.get("acks"), Some("all"));
    }

    #[test]
    fn the_fetch_wait_is_checked_and_defaults_by_broker_kind() {
        let cluster = crate::Brokers::External("b:1".to_owned());
        let mut s = KafkaSettings::default();
        assert_eq!(s.fetch_wait_ms(&cluster), 100);
        s.fetch_wait_max_ms = Some(crate::TANSU_FETCH_WAIT_MAX_MS);
        assert!(s.validate().is_ok());
        assert_eq!(s.fetch_wait_ms(&cluster), 10);
        assert_eq!(KafkaSettings::for_tansu("b:1").fetch_wait_ms(&cluster), 10);
        let tuning = crate::consumer::fetch_tuning(10);
        let config = s.client_config("b:1", "c", &tuning, &[]).expect("valid");
        assert_eq!(config.get("fetch.wait.max.ms"), Some("10"));
        for invalid in [0, FETCH_WAIT_MAX_MS_MAX + 1] {
            s.fetch_wait_max_ms = Some(invalid);
            let err = s.validate().expect_err("out of range");
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        name: "fetch_wait_max_ms",
                        ..
                    }
                ),
                "{err}"
            );
        }
        s.fetch_wait_max_ms = Some(FETCH_WAIT_MAX_MS_MAX);
        assert!(s.validate().is_ok());
    }

    #[test]
    fn pass_through_overrides_tuning() {
        let mut s = KafkaSettings::default();
        s.properties.insert("linger.ms".to_owned(), "50".to_owned());
        s.properties
            .insert("security.protocol".to_owned(), "SASL_SSL".to_owned());
        let config = s
            .client_config("b:1", "p", &[("linger.ms", "5".to_owned())], &[])
            .expect("valid");
        assert_eq!(config.get("linger.ms"), Some("50"));
        assert_eq!(config.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(config.get("bootstrap.servers"), Some("b:1"));
    }

    #[test]
    fn partial_sections_deserialize_with_defaults() {
        let s: KafkaSettings = serde_json::from_str(
            r#"{"brokers": "k1:9092,k2:9092", "partitions": 16,
                "properties": {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512"},
                "topics": {"events": "shop.events"}}"#,
        )
        .expect("valid section");
        assert_eq!(s.brokers.as_deref(), Some("k1:9092,k2:9092"));
        assert_eq!(s.partitions, 16);
        assert_eq!(s.topics.events, "shop.events");
        assert_eq!(s.topics.dead_letters, "stockline.dead-letters");
        assert_eq!(s.max_in_flight_records, DEFAULT_MAX_IN_FLIGHT_RECORDS);
        assert_eq!(s.properties.len(), 2);

        let empty: KafkaSettings = serde_json::from_str("{}").expect("empty section");
        assert_eq!(empty, KafkaSettings::default());

        let typo = serde_json::from_str::<KafkaSettings>(r#"{"partitons": 4}"#);
        assert!(typo.is_err(), "unknown fields are refused");
    }

    #[test]
    fn invalid_numbers_are_rejected() {
        let s = KafkaSettings {
            partitions: 0,
            ..KafkaSettings::default()
        };
        assert!(s.validate().is_err());
        let s = KafkaSettings {
            max_in_flight_records: 0,
            ..KafkaSettings::default()
        };
        assert!(s.validate().is_err());
    }
}
