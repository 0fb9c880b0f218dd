//! Configuration: defaults, then a TOML file (`--config`), then environment
//! variables `STOCKLINE_<SECTION>__<KEY>` (double underscore between levels), e.g.
//! `STOCKLINE_KAFKA__BROKERS=127.0.0.1:9092`. Every setting is documented in
//! `docs/configuration.md` and in `deploy/stockline.example.toml`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use stockline_engine::ProjectorSettings;
use stockline_kafka::KafkaSettings;

/// Top-level keys, for the environment filter.
const SECTIONS: [&str; 5] = ["data_dir", "kafka", "projector", "ticks", "http"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where the store lives (`<data_dir>/store`). Default: `data`.
    pub data_dir: PathBuf,
    pub kafka: KafkaSettings,
    pub projector: ProjectorSettings,
    pub ticks: TickSettings,
    pub http: stockline_service::HttpSettings,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TickSettings {
    /// Publish tick records (one per partition) from this process. Run it in at
    /// least one process per cluster. Default: true.
    pub enabled: bool,
    /// Interval between ticks, in ms: the worst lateness of an expiry on a quiet
    /// partition. Default: 1,000.
    pub interval_ms: u64,
}

impl Default for TickSettings {
    fn default() -> Self {
        TickSettings {
            enabled: true,
            interval_ms: stockline_engine::ticks::DEFAULT_TICK_INTERVAL_MS,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("data"),
            kafka: KafkaSettings::default(),
            projector: ProjectorSettings::default(),
            ticks: TickSettings::default(),
            http: stockline_service::HttpSettings::default(),
        }
    }
}

impl Settings {
    /// Loads the settings: defaults < file < environment.
    pub fn load(file: Option<&Path>) -> Result<Settings> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            if !file.exists() {
                anyhow::bail!("configuration file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file(file));
        }
        // Only variables naming a setting: other STOCKLINE_* variables (tools' own,
        // such as STOCKLINE_TANSU_BIN) are not configuration.
        figment = figment.merge(
            Env::prefixed("STOCKLINE_")
                .filter(|key| {
                    let key = key.as_str().to_ascii_lowercase();
                    SECTIONS
                        .iter()
                        .any(|section| key == *section || key.starts_with(&format!("{section}__")))
                })
                .split("__"),
        );
        let settings: Settings = figment.extract().context("invalid configuration")?;
        settings
            .kafka
            .validate()
            .context("invalid [kafka] configuration")?;
        Ok(settings)
    }

    pub fn store_dir(&self) -> PathBuf {
        self.data_dir.join("store")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented example configuration is valid, and its values are the
    /// defaults (it documents them).
    #[test]
    fn the_example_configuration_loads() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/stockline.example.toml");
        let settings = Settings::load(Some(&path));
        assert!(settings.is_ok(), "{settings:?}");
    }
}
