//! Bearer tokens and roles.
//!
//! Tokens are configured as SHA-256 digests (hex), never in clear, and never logged:
//! a request's token is hashed and compared with every configured digest in constant
//! time. Tokens are 256-bit random strings (`stockline token new`), so an unsalted
//! digest is not guessable.
//!
//! | role | reads | writes |
//! | --- | --- | --- |
//! | `channel` | availability; its own channel's holds | events and holds as its channel only; confirm, release, ship its holds |
//! | `store` | availability; holds, pickups and history at its locations | events at its locations; every action on holds at its locations |
//! | `analyst` | everything | nothing |
//! | `admin` | everything | everything, configuration included |

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stockline_domain::{ChannelId, Event, Hold, LocationId, Payload, PayloadKind};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Role {
    Channel { channel: ChannelId },
    Store { locations: Vec<LocationId> },
    Analyst,
    Admin,
}

/// One configured token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEntry {
    /// Who holds it, for logs and metrics ("web shop", "store 12 desk").
    pub name: String,
    /// Hex SHA-256 digest of the token.
    pub sha256: String,
    #[serde(flatten)]
    pub role: Role,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

/// The digest form of a token, as configured.
pub fn token_digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fresh random token: `sl_` and 64 hex digits (256 bits from the OS RNG).
pub fn new_token() -> String {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    let digest = Sha256::new()
        .chain_update(a.as_bytes())
        .chain_update(b.as_bytes())
        .finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sl_{hex}")
}

/// The configured tokens, ready to check requests against.
#[derive(Debug, Clone)]
pub struct TokenTable {
    entries: Vec<([u8; 32], Caller)>,
}

impl TokenTable {
    /// Checks the configuration: digests are 64 hex digits, names unique.
    pub fn new(entries: &[TokenEntry]) -> Result<TokenTable, String> {
        let mut table = Vec::with_capacity(entries.len());
        for entry in entries {
            let digest = parse_digest(&entry.sha256).ok_or_else(|| {
                format!(
                    "token {:?}: sha256 must be 64 hex digits (the SHA-256 of the token)",
                    entry.name
                )
            })?;
            if table
                .iter()
                .any(|(_, c): &([u8; 32], Caller)| c.name == entry.name)
            {
                return Err(format!("token name {:?} is used twice", entry.name));
            }
            table.push((
                digest,
                Caller {
                    name: entry.name.clone(),
                    role: entry.role.clone(),
                },
            ));
        }
        Ok(TokenTable { entries: table })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The caller presenting `token`, comparing against every entry in constant time.
    pub fn authenticate(&self, token: &str) -> Option<Caller> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (candidate, caller) in &self.entries {
            if bool::from(candidate.ct_eq(&digest)) {
                found = Some(caller.clone());
            }
        }
        found
    }
}

fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// What a hold action is, for permission checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldAction {
    Confirm,
    Release,
    Ready,
    Collected,
    NoShow,
    Shipped,
}

impl HoldAction {
    /// The action a hold event takes (not for hold requests).
    pub fn of_payload(payload: &Payload) -> Option<HoldAction> {
        match payload {
            Payload::HoldConfirmed { .. } => Some(HoldAction::Confirm),
            Payload::HoldReleased { .. } => Some(HoldAction::Release),
            Payload::HoldReadyForPickup { .. } => Some(HoldAction::Ready),
            Payload::HoldCollected { .. } => Some(HoldAction::Collected),
            Payload::HoldNoShow { .. } => Some(HoldAction::NoShow),
            Payload::HoldShipped { .. } => Some(HoldAction::Shipped),
            _ => None,
        }
    }
}

impl Caller {
    fn forbidden(&self, what: impl Into<String>) -> ApiError {
        ApiError::Forbidden {
            caller: self.name.clone(),
            what: what.into(),
        }
    }

    /// Availability is readable by every authenticated caller.
    pub fn may_read_availability(&self) -> Result<(), ApiError> {
        Ok(())
    }

    pub fn may_see_hold(&self, hold: &Hold) -> bool {
        match &self.role {
            Role::Admin | Role::Analyst => true,
            Role::Channel { channel } => &hold.channel == channel,
            Role::Store { locations } => hold
                .location
                .as_ref()
                .or(hold.requested_location.as_ref())
                .is_some_and(|l| locations.contains(l)),
        }
    }

    /// Requesting a hold: as the caller's own channel only.
    pub fn may_request_hold(
        &self,
        channel: &ChannelId,
        location: Option<&LocationId>,
    ) -> Result<(), ApiError> {
        match &self.role {
            Role::Admin => Ok(()),
            Role::Channel { channel: own } if own == channel => Ok(()),
            Role::Channel { channel: own } => Err(self.forbidden(format!(
                "holds as channel {channel} (this token is channel {own})"
            ))),
            Role::Store { locations } if location.is_some_and(|l| locations.contains(l)) => Ok(()),
            Role::Store { .. } => Err(self.forbidden("holds outside its locations")),
            Role::Analyst => Err(self.forbidden("writes (analysts read only)")),
        }
    }

    pub fn may_act_on_hold(&self, hold: &Hold, action: HoldAction) -> Result<(), ApiError> {
        match &self.role {
            Role::Admin => Ok(()),
            Role::Analyst => Err(self.forbidden("writes (analysts read only)")),
            Role::Channel { channel } => {
                if &hold.channel != channel {
                    return Err(self.forbidden(format!("holds of channel {}", hold.channel)));
                }
                match action {
                    HoldAction::Confirm | HoldAction::Release | HoldAction::Shipped => Ok(()),
                    HoldAction::Ready | HoldAction::Collected | HoldAction::NoShow => Err(self
                        .forbidden(
                            "pickup desk actions (ready, collected, no-show): stores do those",
                        )),
                }
            }
            Role::Store { locations } => {
                if hold
                    .location
                    .as_ref()
                    .is_some_and(|l| locations.contains(l))
                {
                    Ok(())
                } else {
                    Err(self.forbidden("holds outside its locations"))
                }
            }
        }
    }

    pub fn may_read_location(&self, location: &LocationId) -> Result<(), ApiError> {
        match &self.role {
            Role::Admin | Role::Analyst => Ok(()),
            Role::Store { locations } if locations.contains(location) => Ok(()),
            Role::Store { .. } => Err(self.forbidden(format!("location {location}"))),
            Role::Channel { .. } => Err(self.forbidden("store queues and histories")),
        }
    }

    pub fn may_read_history(&self, location: Option<&LocationId>) -> Result<(), ApiError> {
        match (&self.role, location) {
            (Role::Admin | Role::Analyst, _) => Ok(()),
            (Role::Store { locations }, Some(location)) if locations.contains(location) => Ok(()),
            (Role::Store { .. }, _) => Err(self.forbidden(
                "history outside its locations (name one of its locations with ?location=)",
            )),
            (Role::Channel { .. }, _) => Err(self.forbidden("stock history")),
        }
    }

    /// Ingest: which events this caller may write.
    pub fn may_publish(&self, event: &Event) -> Result<(), ApiError> {
        let kind = event.payload.kind();
        if kind == PayloadKind::Tick {
            return Err(self.forbidden("ticks (the system publishes them)"));
        }
        let configuration = matches!(
            kind,
            PayloadKind::LocationDefined
                | PayloadKind::ChannelDefined
                | PayloadKind::SafetyStockSet
                | PayloadKind::AllocationSet
        );
        match &self.role {
            Role::Admin => Ok(()),
            Role::Analyst => Err(self.forbidden("writes (analysts read only)")),
            _ if configuration => Err(self.forbidden("configuration events (admin only)")),
            Role::Channel { channel } if &event.channel == channel => Ok(()),
            Role::Channel { channel } => Err(self.forbidden(format!(
                "events of channel {} (this token is channel {channel})",
                event.channel
            ))),
            Role::Store { locations } => {
                if event
                    .location
                    .as_ref()
                    .is_some_and(|l| locations.contains(l))
                {
                    Ok(())
                } else {
                    Err(self.forbidden("events outside its locations"))
                }
            }
        }
    }

    /// What became of an event (its outcome): its own channel, a store desk at
    /// its location, analysts and admins. An outcome tells rejection details
    /// (quantities, hold ids) that are the event owner's business.
    pub fn may_see_event(&self, event: &Event) -> Result<(), ApiError> {
        match &self.role {
            Role::Admin | Role::Analyst => Ok(()),
            Role::Channel { channel } if &event.channel == channel => Ok(()),
            Role::Channel { channel } => Err(self.forbidden(format!(
                "outcomes of channel {}'s events (this token is channel {channel})",
                event.channel
            ))),
            Role::Store { locations }
                if event
                    .location
                    .as_ref()
                    .is_some_and(|l| locations.contains(l)) =>
            {
                Ok(())
            }
            Role::Store { .. } => Err(self.forbidden("outcomes of events outside its locations")),
        }
    }

    /// Whether this caller reads every record (analysts and admins).
    pub fn reads_everything(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Analyst)
    }

    pub fn role_name(&self) -> &'static str {
        match self.role {
            Role::Channel { .. } => "channel",
            Role::Store { .. } => "store",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_authenticate_by_digest_only() {
        let token = new_token();
        assert!(token.starts_with("sl_") && token.len() == 67);
        let table = TokenTable::new(&[TokenEntry {
            name: "web".into(),
            sha256: token_digest(&token),
            role: Role::Analyst,
        }])
        .expect("valid table");
        assert_eq!(
            table.authenticate(&token).map(|c| c.name),
            Some("web".into())
        );
        assert!(table.authenticate("sl_nope").is_none());
        assert!(
            TokenTable::new(&[TokenEntry {
                name: "bad".into(),
                sha256: "abc".into(),
                role: Role::Admin,
            }])
            .is_err()
        );
    }
}
