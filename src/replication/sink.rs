//! Where a transfer's records go on a worker, as `dns::client::transfer` reads them: an
//! ordinary zone straight into the store's builder (`ZoneSink`); the certificate zone into
//! decoded records for the reader and, from the same wire bytes, the store's builder and the
//! cache file's bytes (`CertificateSink`), so nothing is encoded twice.
//!
//! Owns the hand-off only; it must not judge records (the reader and the store do) or
//! touch the network or the disk.

use hickory_proto::{
    rr::{Name, RData, Record, RecordType, rdata::SOA},
    serialize::binary::{BinDecodable, BinDecoder},
};

use super::cache;
use crate::{dns::client::transfer as xfr, zones::store::Builder};

/// Where an ordinary zone's transfer goes: the store's builder, and its SOA for the timers.
pub(super) struct ZoneSink {
    pub(super) builder: Builder,
    pub(super) soa: Option<SOA>,
}

impl xfr::Sink for ZoneSink {
    fn record(&mut self, wire: &[u8], rtype: u16) -> Result<(), String> {
        if rtype == u16::from(RecordType::SOA) && self.soa.is_none() {
            let record = Record::read(&mut BinDecoder::new(wire)).map_err(|e| e.to_string())?;
            if let RData::SOA(soa) = record.data {
                self.soa = Some(soa);
            }
        }
        self.builder.add_wire(wire, 0).map_err(|e| e.message)
    }
}

/// Where the certificate zone's transfer goes: decoded records for the reader, and, from
/// the same wire bytes, the served zone and the cache file, so neither encodes the records
/// again (a zone holds a sealed key per worker: this work grew with the cluster).
/// A record the zone store will not take is an error of serving, after the reader judged
/// the bundle, not of the transfer: `served` keeps the first one.
pub(super) struct CertificateSink {
    pub(super) records: Vec<Record>,
    pub(super) served: Result<Builder, String>,
    pub(super) cache: cache::Encoder,
}

impl CertificateSink {
    pub(super) fn new(zone: &Name) -> Self {
        Self {
            records: Vec::new(),
            served: Ok(Builder::new(zone)),
            cache: cache::Encoder::default(),
        }
    }
}

impl xfr::Sink for CertificateSink {
    fn record(&mut self, wire: &[u8], rtype: u16) -> Result<(), String> {
        self.records.record(wire, rtype)?;
        self.cache.push(wire);
        if let Ok(builder) = &mut self.served
            && let Err(e) = builder.add_wire(wire, 0)
        {
            self.served = Err(e.message);
        }
        Ok(())
    }
}
