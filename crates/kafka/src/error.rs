//! How failures are classified, shared by the producer, consumer and admin
//! errors.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// What a caller should do about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Transient (timeout, broker unreachable, leader moving, local queue
    /// full): the same request may succeed later. Stockline events carry a
    /// client-chosen id, so retrying a record that may have been written is
    /// harmless.
    Retriable,
    /// The client (or the data it relies on) is unusable: recreate the
    /// producer/consumer or stop and alert an operator. Retrying the same
    /// call will not help.
    Fatal,
    /// This record or request is wrong (too large, unknown partition or
    /// topic): retrying it unchanged fails again, other records are fine.
    BadInput,
}

/// Classifies a librdkafka error code.
///
/// Idempotent-producer sequence/epoch errors and authentication or
/// authorisation failures are fatal; codes about the record or its
/// destination are bad input; everything else (timeouts, transport, leader
/// changes, queue full, purges) is retriable, since librdkafka only surfaces
/// those after its own retries within `message.timeout.ms` and the caller may
/// try again.
#[must_use]
pub fn classify_code(code: RDKafkaErrorCode) -> ErrorKind {
    use RDKafkaErrorCode as C;
    match code {
        C::MessageSizeTooLarge
        | C::InvalidMessageSize
        | C::MessageBatchTooLarge
        | C::InvalidRecord
        | C::InvalidMessage
        | C::InvalidTimestamp
        | C::UnknownPartition
        | C::UnknownTopic
        | C::UnknownTopicOrPartition
        | C::InvalidTopic
        | C::InvalidArgument
        | C::KeySerialization
        | C::ValueSerialization
        | C::InvalidPartitions
        | C::InvalidReplicationFactor
        | C::InvalidConfig
        | C::PolicyViolation => ErrorKind::BadInput,
        C::Fatal
        | C::OutOfOrderSequenceNumber
        | C::ProducerFenced
        | C::InvalidProducerEpoch
        | C::InvalidProducerIdMapping
        | C::UnknownProducerId
        | C::Fenced
        | C::GaplessGuarantee
        | C::Inconsistent
        | C::Authentication
        | C::SaslAuthenticationFailed
        | C::UnsupportedSASLMechanism
        | C::IllegalSASLState
        | C::TopicAuthorizationFailed
        | C::GroupAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::TransactionalIdAuthorizationFailed
        | C::SSL
        | C::UnsupportedFeature
        | C::UnsupportedVersion
        | C::UnsupportedForMessageFormat
        | C::UnsupportedCompressionType
        | C::CriticalSystemResource
        | C::InvalidGroupId
        | C::InconsistentGroupProtocol
        | C::FencedInstanceId => ErrorKind::Fatal,
        _ => ErrorKind::Retriable,
    }
}

/// The librdkafka error code inside a [`KafkaError`], if it has one.
#[must_use]
pub fn error_code(error: &KafkaError) -> Option<RDKafkaErrorCode> {
    error.rdkafka_error_code()
}

/// Classifies a [`KafkaError`]; errors without a code (client creation,
/// configuration, nul bytes) are fatal for the client that raised them.
#[must_use]
pub fn classify(error: &KafkaError) -> ErrorKind {
    match error {
        KafkaError::MessageConsumptionFatal(_) => ErrorKind::Fatal,
        KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_) | KafkaError::Nul(_) => {
            ErrorKind::Fatal
        }
        other => other
            .rdkafka_error_code()
            .map_or(ErrorKind::Fatal, classify_code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn produce_codes_are_classified_as_the_design_says() {
        use RDKafkaErrorCode as C;
        for code in [
            C::MessageSizeTooLarge,
            C::InvalidRecord,
            C::UnknownPartition,
            C::UnknownTopic,
            C::UnknownTopicOrPartition,
        ] {
            assert_eq!(classify_code(code), ErrorKind::BadInput, "{code:?}");
        }
        for code in [C::OutOfOrderSequenceNumber, C::ProducerFenced, C::Fatal] {
            assert_eq!(classify_code(code), ErrorKind::Fatal, "{code:?}");
        }
        for code in [
            C::MessageTimedOut,
            C::RequestTimedOut,
            C::BrokerTransportFailure,
            C::AllBrokersDown,
            C::NotLeaderForPartition,
            C::LeaderNotAvailable,
            C::NetworkException,
            C::QueueFull,
            C::PurgeInflight,
        ] {
            assert_eq!(classify_code(code), ErrorKind::Retriable, "{code:?}");
        }
    }

    #[test]
    fn fatal_consumption_is_fatal_whatever_the_code() {
        let e = KafkaError::MessageConsumptionFatal(RDKafkaErrorCode::BrokerTransportFailure);
        assert_eq!(classify(&e), ErrorKind::Fatal);
        let e = KafkaError::MessageConsumption(RDKafkaErrorCode::BrokerTransportFailure);
        assert_eq!(classify(&e), ErrorKind::Retriable);
    }
}
