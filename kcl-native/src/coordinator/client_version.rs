//! The table's client version (`Migration3.0` in the CoordinatorState table) at start, and
//! the role it implies; then a re-read every minute.
//!
//! At start ([`decide`], what [`Coordinator::launch`](super::Coordinator::launch) runs):
//!
//! 1. read `Migration3.0` (consistent);
//! 2. none, and the lease table has no lease (a new application): create it as Java 3.1.3 does
//!    on a fresh application — `cv = CLIENT_VERSION_3X`, or `CLIENT_VERSION_UPGRADE_FROM_2X`
//!    when `clientVersionConfig` is compatible with 2.x — with a `PutItem` conditioned on no
//!    item, so that of several workers starting together exactly one writes it and the others
//!    read it;
//! 3. none on a table with leases: nothing is written (a native worker does not decide the
//!    protocol of an application it did not create — Java would write it from its
//!    configuration), and the configuration says how to read the table;
//! 4. the role: a 2.x version → [`Role::Taker2x`] (unless `take_part_in_2x` is off: refused);
//!    a 3.x version → the configured [`Role::Leader`] or [`Role::Follower`] (a configured
//!    taker is refused: on a 3.x table it would fight the leader).
//!
//! Store failures are retried up to ten times a second apart (Java's
//! `MigrationClientVersionStateInitializer`).
//!
//! Afterwards ([`watch`]) the item is read every `client_version_period`; a change is logged —
//! at ERROR when it changes the protocol this worker runs (restart the worker) — and never
//! switches the role live.

use std::sync::Arc;
use std::time::Duration;

use kcl_lease::coordinator::{MIGRATION_KEY, create_migration_state};
use kcl_lease::{
    ClientVersion, ItemError, LeaseStore, MigrationState, StoreError, Table, UpdateError,
    WorkerMode,
};

use super::config::{ClientVersionConfig, epoch_millis};
use super::{CoordinatorConfig, Role, Shared, StartError, WallClock};

/// Tries of each read or write of the start (Java's `MAX_INITIALIZATION_RETRY`).
const TRIES: usize = 10;
/// The pause between them (Java's `INITIALIZATION_RETRY_DELAY_MILLIS`, without its jitter).
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// What [`Coordinator::launch`](super::Coordinator::launch) found in the table and decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionDecision {
    /// The client version of the table (`None`: no `Migration3.0` item on a table with leases).
    pub client_version: Option<ClientVersion>,
    /// Whether this worker created the `Migration3.0` item.
    pub created: bool,
    /// The role this worker runs.
    pub role: Role,
}

/// Why [`Coordinator::launch`](super::Coordinator::launch) did not start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    /// The coordinator did not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The tables could not be read or written (after ten tries).
    #[error("the client version could not be determined: {0}")]
    Store(#[from] StoreError),
    /// The `Migration3.0` item cannot be read.
    #[error("the Migration3.0 item cannot be read: {0}")]
    MigrationItem(#[from] ItemError),
    /// The table is in a 2.x client version and the configuration does not take part in it.
    #[error("the table is in a 2.x client version ({0:?}) and take_part_in_2x is off")]
    Refused2x(Option<ClientVersion>),
    /// The 2.x lease taker was configured on a table in a 3.x client version.
    #[error("the 2.x lease taker was configured, but the table is in a 3.x client version ({0:?})")]
    TakerOn3x(Option<ClientVersion>),
}

/// The version a new application starts with, from `clientVersionConfig`.
fn configured_version(config: &CoordinatorConfig) -> ClientVersion {
    match config.client_version_config {
        ClientVersionConfig::V3x => ClientVersion::V3x,
        ClientVersionConfig::CompatibleWith2x => ClientVersion::UpgradeFrom2x,
    }
}

/// The protocol of a table: its version's, or without one, the configuration's.
fn mode_of(version: Option<ClientVersion>, config: &CoordinatorConfig) -> WorkerMode {
    version.unwrap_or_else(|| configured_version(config)).mode()
}

/// The role for a table in `version` (rule 4 of the module's documentation).
pub(crate) fn role_for(
    version: Option<ClientVersion>,
    config: &CoordinatorConfig,
) -> Result<Role, LaunchError> {
    match (mode_of(version, config), config.role) {
        (WorkerMode::Taker2x, _) if config.take_part_in_2x => Ok(Role::Taker2x),
        (WorkerMode::Taker2x, _) => Err(LaunchError::Refused2x(version)),
        (WorkerMode::Peer3x, Role::Taker2x) => Err(LaunchError::TakerOn3x(version)),
        (WorkerMode::Peer3x, role) => Ok(role),
    }
}

async fn retried<T, F, Fut>(what: &str, mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match call().await {
            Ok(value) => return Ok(value),
            Err(error) if tries < TRIES && !matches!(error, StoreError::Invalid(_)) => {
                tracing::warn!(%error, tries, "{what} failed: trying again");
                tokio::time::sleep(RETRY_DELAY).await;
            }
            Err(error) => return Err(error),
        }
    }
}

async fn read_state<S: LeaseStore>(store: &S) -> Result<Option<MigrationState>, LaunchError> {
    let item = retried("reading Migration3.0", || {
        store.get(Table::CoordinatorState, MIGRATION_KEY, true)
    })
    .await?;
    Ok(item.as_ref().map(MigrationState::decode).transpose()?)
}

/// Reads (and for a new application writes) the client version and decides the role (see the
/// module's documentation).
pub(crate) async fn decide<S: LeaseStore>(
    store: &S,
    config: &CoordinatorConfig,
    clock: &dyn WallClock,
) -> Result<VersionDecision, LaunchError> {
    let mut created = false;
    let state = match read_state(store).await? {
        Some(state) => Some(state),
        None => {
            let items = retried("scanning the lease table", || store.scan(Table::Lease)).await?;
            if items.is_empty() {
                // As Java creates it: the INIT state in the history.
                let state = MigrationState::created(
                    configured_version(config),
                    &config.worker_id,
                    epoch_millis(clock.now()),
                );
                let write = create_migration_state(&state);
                let outcome = retried("creating Migration3.0", || async {
                    match store.update(Table::CoordinatorState, &write).await {
                        Ok(_) => Ok(true),
                        Err(UpdateError::ConditionFailed(_)) => Ok(false),
                        Err(UpdateError::Store(error)) => Err(error),
                    }
                })
                .await?;
                if outcome {
                    tracing::info!(cv = %state.client_version, "new application: Migration3.0 created");
                    created = true;
                    Some(state)
                } else {
                    // Another worker created it meanwhile.
                    read_state(store).await?
                }
            } else {
                tracing::warn!(
                    configured = %configured_version(config),
                    "no Migration3.0 item on a lease table with leases: the table is read as clientVersionConfig says, nothing is written"
                );
                None
            }
        }
    };
    let client_version = state.map(|state| state.client_version);
    let role = role_for(client_version, config)?;
    tracing::info!(cv = ?client_version, %role, "client version read");
    Ok(VersionDecision {
        client_version,
        created,
        role,
    })
}

/// Re-reads the client version every period until aborted, logging changes.
pub(crate) async fn watch<S: LeaseStore + Send + Sync + 'static>(
    shared: Arc<Shared>,
    store: Arc<S>,
) {
    let period = shared.config.client_version_period;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        let item = match store
            .get(Table::CoordinatorState, MIGRATION_KEY, true)
            .await
        {
            Ok(item) => item,
            Err(error) => {
                tracing::warn!(%error, "reading Migration3.0 failed: trying next period");
                continue;
            }
        };
        let now = match item.as_ref().map(MigrationState::decode).transpose() {
            Ok(state) => state.map(|state| state.client_version),
            Err(error) => {
                tracing::error!(%error, "the Migration3.0 item cannot be read");
                continue;
            }
        };
        let before = shared.set_client_version(now);
        if before == now {
            continue;
        }
        let config = &shared.config;
        if mode_of(before, config) != mode_of(now, config) {
            tracing::error!(before = ?before, now = ?now, role = %config.role,
                "the table's client version changed to another protocol under this worker: restart it to follow the table");
        } else {
            tracing::info!(before = ?before, now = ?now, "the table's client version changed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_by_version_and_configuration() {
        let leader = CoordinatorConfig::new("w");
        let follower = CoordinatorConfig {
            role: Role::Follower,
            ..leader.clone()
        };
        let taker = CoordinatorConfig {
            role: Role::Taker2x,
            ..leader.clone()
        };
        let refuse = CoordinatorConfig {
            take_part_in_2x: false,
            ..leader.clone()
        };
        let compatible = CoordinatorConfig {
            client_version_config: ClientVersionConfig::CompatibleWith2x,
            ..leader.clone()
        };
        use ClientVersion::*;
        for version in [V2x, UpgradeFrom2x] {
            assert_eq!(role_for(Some(version), &leader), Ok(Role::Taker2x));
            assert_eq!(role_for(Some(version), &taker), Ok(Role::Taker2x));
            assert!(role_for(Some(version), &refuse).is_err());
        }
        for version in [V3x, V3xWithRollback] {
            assert_eq!(role_for(Some(version), &leader), Ok(Role::Leader));
            assert_eq!(role_for(Some(version), &follower), Ok(Role::Follower));
            assert!(role_for(Some(version), &taker).is_err());
        }
        assert_eq!(role_for(None, &leader), Ok(Role::Leader));
        assert_eq!(role_for(None, &compatible), Ok(Role::Taker2x));
    }
}
