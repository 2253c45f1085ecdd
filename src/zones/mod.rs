//! The node's authoritative zones: loaded from files, served from a catalog that is swapped
//! whole on reload.
//!
//! Owns which zones exist and their contents. A reload builds a new catalog beside the old
//! one; a zone whose file fails keeps its previous contents, and the error names file and
//! line. It must not touch sockets or know how answers travel (that is `dns`).

mod parse;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use arc_swap::ArcSwap;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType, RrKey, rdata::TXT};
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

/// TXT records that live beside the files (ACME challenges), by owner: kept across reloads.
type Overlay = BTreeMap<Name, Vec<String>>;

/// TTL of overlay records: short, they change with every order.
const OVERLAY_TTL: u32 = 60;

/// The zones of a node.
pub struct Zones {
    catalog: ArcSwap<Catalog>,
    // Only reload, start-up and overlay changes take these; queries read `catalog` and
    // never wait on them.
    loaded: Mutex<Vec<Loaded>>,
    overlay: Mutex<Overlay>,
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
            overlay: Mutex::default(),
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
        let overlay = self
            .overlay
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut errors = Vec::new();
        let mut changed = Vec::new();
        for zone in loaded.iter_mut() {
            match handler_with(&zone.config, &overlay) {
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

    /// Serves exactly `values` as TXT at `owner` (none: removes them), in whichever zone
    /// holds `owner`, until changed again. Returns false if no zone holds it.
    pub async fn set_txt(&self, owner: &Name, values: &[String]) -> bool {
        let Some(handler) = self.handler_for(owner) else {
            return false;
        };
        {
            let mut overlay = self.overlay.lock().unwrap_or_else(|e| e.into_inner());
            if values.is_empty() {
                overlay.remove(owner);
            } else {
                overlay.insert(owner.clone(), values.to_vec());
            }
        }
        let serial = handler.serial().await;
        handler
            .records_mut()
            .await
            .remove(&RrKey::new(owner.into(), RecordType::TXT));
        for record in txt_records(owner, values) {
            handler.upsert(record, serial).await;
        }
        true
    }

    /// The handler of the deepest zone holding `name`.
    fn handler_for(&self, name: &Name) -> Option<Arc<InMemoryZoneHandler>> {
        let loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        loaded
            .iter()
            .filter(|z| z.config.origin.zone_of(name))
            .max_by_key(|z| z.config.origin.num_labels())
            .map(|z| z.handler.clone())
    }

    /// Whether `name` is at or below one of the node's zones.
    pub fn is_authoritative_for(&self, name: &LowerName) -> bool {
        self.catalog.load().find(name).is_some()
    }
}

fn handler(config: &ZoneConfig) -> Result<Arc<InMemoryZoneHandler>, ZoneError> {
    handler_with(config, &Overlay::new())
}

/// Loads a zone from its file and adds the overlay records that fall inside it.
fn handler_with(
    config: &ZoneConfig,
    overlay: &Overlay,
) -> Result<Arc<InMemoryZoneHandler>, ZoneError> {
    let records = parse::load(&config.origin, &config.file)?;
    // `parse::load` checked the SOA, the only thing `new` refuses.
    let mut handler = InMemoryZoneHandler::new(
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
    // Overlay names are checked against the deepest zone when set; here any zone holding
    // them takes them, which is the same zone unless zones nest.
    for (owner, values) in overlay.iter().filter(|(o, _)| config.origin.zone_of(o)) {
        for record in txt_records(owner, values) {
            // The serial only tags the record set for IXFR journals, which a file zone has not.
            handler.upsert_mut(record, 0);
        }
    }
    Ok(Arc::new(handler))
}

fn txt_records<'a>(owner: &'a Name, values: &'a [String]) -> impl Iterator<Item = Record> + 'a {
    values.iter().map(|v| {
        Record::from_rdata(
            owner.clone(),
            OVERLAY_TTL,
            RData::TXT(TXT::new(vec![v.clone()])),
        )
    })
}

fn catalog(loaded: &[Loaded]) -> Catalog {
    let mut catalog = Catalog::new();
    for zone in loaded {
        let handler: Arc<dyn ZoneHandler> = zone.handler.clone();
        catalog.upsert(LowerName::new(&zone.config.origin), vec![handler]);
    }
    catalog
}
