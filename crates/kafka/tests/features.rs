//! librdkafka was built with what production needs: TLS, SASL/PLAIN and
//! SCRAM (system OpenSSL) and zstd. librdkafka validates these properties
//! when a client is created, so creation alone proves the build.

mod common;

use std::sync::Arc;

use common::{Kind, consume_n};
use stockline_kafka::{
    Brokers, FromBeginning, KafkaSettings, OutgoingRecord, RecordProducer, unique_name,
};

fn settings_with(properties: &[(&str, &str)]) -> KafkaSettings {
    KafkaSettings {
        properties: properties
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..KafkaSettings::default()
    }
}

#[test]
fn tls_and_sasl_scram_and_plain_are_built_in() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    // Nothing listens there: clients connect lazily, creation is enough.
    let brokers = Brokers::External("127.0.0.1:1".to_owned());
    for mechanism in ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] {
        let settings = settings_with(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", mechanism),
            ("sasl.username", "stockline"),
            ("sasl.password", "secret"),
        ]);
        RecordProducer::new(&brokers, &settings)
            .unwrap_or_else(|e| panic!("{mechanism} over TLS unsupported: {e}"));
    }
}

#[test]
fn zstd_compression_round_trips_on_the_embedded_broker() {
    common::run(Kind::Embedded, |env| {
        let topic = env.topic(1);
        let settings = KafkaSettings {
            properties: settings_with(&[("compression.type", "zstd")]).properties,
            ..env.settings.clone()
        };
        let producer = env.producer_with(&settings);
        let records = (0..500_i64)
            .map(|i| {
                OutgoingRecord::to_partition(
                    topic.as_str(),
                    0,
                    None,
                    format!("compressible payload {i} {}", "x".repeat(200)),
                    1_750_000_000_000 + i,
                )
            })
            .collect();
        env.produce(&producer, records);
        let mut consumer = env.consumer(&unique_name("g"), &topic, Arc::new(FromBeginning));
        let (records, _) = consume_n(&mut consumer, 500, 20_000);
        assert_eq!(records.len(), 500);
        assert!(
            records[499]
                .payload
                .as_deref()
                .is_some_and(|p| p.starts_with(b"compressible payload 499"))
        );
    });
}
