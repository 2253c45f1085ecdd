//! The node's authoritative zones: loaded from files, served from a catalog that is swapped
//! whole on reload.
//!
//! Owns which zones exist and their contents. A reload builds a new catalog beside the old
//! one; a zone whose file fails keeps its previous contents, and the error names file and
//! line. It must not touch sockets or know how answers travel (that is `dns`).

mod parse;

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use hickory_proto::rr::{LowerName, Name};
use hickory_server::{
    store::in_memory::InMemoryZoneHandler,
    zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType},
};

pub use parse::{ZoneError, load as load_file};

use crate::config::ZoneConfig;

/// One zone as served now.
struct Loaded {
    config: ZoneConfig,
    handler: Arc<InMemoryZoneHandler>,
}

/// The zones of a node.
pub struct Zones {
    catalog: ArcSwap<Catalog>,
    // Only reload and start-up take this; queries read `catalog` and never wait on it.
    loaded: Mutex<Vec<Loaded>>,
}

impl Zones {
    /// Loads every configured zone; any failure is returned (a bad zone refuses start).
    pub fn load(configs: &[ZoneConfig]) -> Result<Self, Vec<ZoneError>> {
        let mut loaded = Vec::with_capacity(configs.len());
        let mut errors = Vec::new();
        for config in configs {
            match handler(config) {
                Ok(handler) => loaded.push(Loaded {
                    config: config.clone(),
                    handler,
                }),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let catalog = catalog(&loaded);
        Ok(Self {
            catalog: ArcSwap::from_pointee(catalog),
            loaded: Mutex::new(loaded),
        })
    }

    /// Checks every configured zone file without keeping anything.
    pub fn check(configs: &[ZoneConfig]) -> Vec<ZoneError> {
        configs
            .iter()
            .filter_map(|c| parse::load(&c.origin, &c.file).err())
            .collect()
    }

    /// Re-reads every zone file. Zones that fail keep their contents; their errors are
    /// returned. Returns the zones that changed.
    pub fn reload(&self) -> (Vec<Name>, Vec<ZoneError>) {
        // A poisoned lock means a reload panicked; the data under it is still whole.
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        let mut errors = Vec::new();
        let mut changed = Vec::new();
        for zone in loaded.iter_mut() {
            match handler(&zone.config) {
                Ok(handler) => {
                    zone.handler = handler;
                    changed.push(zone.config.origin.clone());
                }
                Err(e) => errors.push(e),
            }
        }
        self.catalog.store(Arc::new(catalog(&loaded)));
        (changed, errors)
    }

    /// The catalog to answer from now.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load_full()
    }

    /// Whether `name` is at or below one of the node's zones.
    pub fn is_authoritative_for(&self, name: &LowerName) -> bool {
        self.catalog.load().find(name).is_some()
    }
}

fn handler(config: &ZoneConfig) -> Result<Arc<InMemoryZoneHandler>, ZoneError> {
    let records = parse::load(&config.origin, &config.file)?;
    // `parse::load` checked the SOA, the only thing `new` refuses.
    let handler = InMemoryZoneHandler::new(
        config.origin.clone(),
        records,
        ZoneType::Primary,
        AxfrPolicy::Deny,
        None,
    )
    .map_err(|message| ZoneError::Syntax {
        path: config.file.clone(),
        line: 0,
        message,
    })?;
    Ok(Arc::new(handler))
}

fn catalog(loaded: &[Loaded]) -> Catalog {
    let mut catalog = Catalog::new();
    for zone in loaded {
        let handler: Arc<dyn ZoneHandler> = zone.handler.clone();
        catalog.upsert(LowerName::new(&zone.config.origin), vec![handler]);
    }
    catalog
}
