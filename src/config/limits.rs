//! `[limits]`, `[rrl]` and the forwarder's allow-list, typed: what a client, a connection
//! or a query may cost, each with a default that suits a node facing the Internet.
//!
//! Owns the defaults and the range checks of these keys (README, "Exposure and limits").
//! It must not apply them: the listeners in `dns` do.

use std::{net::IpAddr, time::Duration};

use super::{Checker, ConfigError, file};

/// DNS Flag Day 2020: no fragmentation on common paths (Knot's and BIND's default too).
pub const DEFAULT_UDP_MAX_PAYLOAD: u16 = 1232;
const DEFAULT_UDP_SLOW_QUERIES: usize = 512;
const DEFAULT_CONNECTIONS: usize = 4096;
const DEFAULT_CONNECTIONS_PER_SOURCE: usize = 64;
const DEFAULT_IDLE_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_MESSAGE_TIMEOUT_MS: u64 = 2_000;
const DEFAULT_WRITE_TIMEOUT_MS: u64 = 5_000;
const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_QUERIES_PER_CONNECTION: u32 = 1_000_000;
const DEFAULT_CONNECTION_LIFETIME_SECS: u64 = 600;
const DEFAULT_DOH_STREAMS: u32 = 100;
const DEFAULT_DOH_HEADER_BYTES: u32 = 16 << 10;
/// HTTP/2's own initial window: one whole DNS message fits.
const DEFAULT_DOH_WINDOW_BYTES: u32 = 65_535;
const DEFAULT_RRL_SLIP: u32 = 2;
const DEFAULT_RRL_IPV4_PREFIX: u8 = 24;
const DEFAULT_RRL_IPV6_PREFIX: u8 = 56;
const DEFAULT_RRL_TABLE_SIZE: usize = 16_384;
const DEFAULT_RRL_LOG_INTERVAL_SECS: u64 = 10;
const DEFAULT_FORWARD_IN_FLIGHT: usize = 256;
const DEFAULT_ACME_HTTP_TIMEOUT_SECS: u64 = 30;
const DEFAULT_ACME_ORDER_TIMEOUT_SECS: u64 = 600;

/// `[limits]`, typed. Every stream listener (TCP, DoT, DoH) shares one pool of connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The largest UDP answer sent, whatever the client's EDNS size; larger ones get TC.
    pub udp_max_payload: u16,
    /// UDP queries without a prepared answer being worked on at once; more are dropped.
    pub udp_slow_queries: usize,
    /// Stream connections at once (capped again at half the open-file limit at start).
    pub connections: usize,
    /// Stream connections from one IPv4 address or IPv6 /64.
    pub connections_per_source: usize,
    /// How long a connection may wait for its next query while the pool is under half
    /// full; less as it fills.
    pub idle_timeout: Duration,
    /// How long the rest of a message may take once its first byte came (TCP, DoT), and a
    /// DoH request's body.
    pub message_timeout: Duration,
    /// How long one answer may take to write.
    pub write_timeout: Duration,
    /// TLS handshake, and HTTP/2 preface and settings.
    pub handshake_timeout: Duration,
    /// Queries (DoH requests) one connection may ask before it is closed.
    pub queries_per_connection: u32,
    /// How long one connection may stay open.
    pub connection_lifetime: Duration,
    /// HTTP/2 streams open at once on one DoH connection.
    pub doh_streams: u32,
    /// The largest HTTP/2 header list accepted.
    pub doh_header_bytes: u32,
    /// HTTP/2 flow-control window, per stream and per connection: request bytes a client
    /// may send before the node reads them.
    pub doh_window_bytes: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            udp_max_payload: DEFAULT_UDP_MAX_PAYLOAD,
            udp_slow_queries: DEFAULT_UDP_SLOW_QUERIES,
            connections: DEFAULT_CONNECTIONS,
            connections_per_source: DEFAULT_CONNECTIONS_PER_SOURCE,
            idle_timeout: Duration::from_millis(DEFAULT_IDLE_TIMEOUT_MS),
            message_timeout: Duration::from_millis(DEFAULT_MESSAGE_TIMEOUT_MS),
            write_timeout: Duration::from_millis(DEFAULT_WRITE_TIMEOUT_MS),
            handshake_timeout: Duration::from_millis(DEFAULT_HANDSHAKE_TIMEOUT_MS),
            queries_per_connection: DEFAULT_QUERIES_PER_CONNECTION,
            connection_lifetime: Duration::from_secs(DEFAULT_CONNECTION_LIFETIME_SECS),
            doh_streams: DEFAULT_DOH_STREAMS,
            doh_header_bytes: DEFAULT_DOH_HEADER_BYTES,
            doh_window_bytes: DEFAULT_DOH_WINDOW_BYTES,
        }
    }
}

/// `[rrl]`, typed: response rate limiting for UDP, per client prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrlConfig {
    /// Full answers per second to one prefix.
    pub responses_per_second: u32,
    /// Every Nth limited answer is sent truncated (TC=1, so real clients retry over TCP);
    /// 0: none, 1: all.
    pub slip: u32,
    pub ipv4_prefix_length: u8,
    pub ipv6_prefix_length: u8,
    /// Prefixes tracked at once (a fixed table; more share entries).
    pub table_size: usize,
    /// One log line per limited prefix per interval at most.
    pub log_interval: Duration,
}

/// An address block: `192.0.2.0/24`, `2001:db8::/32`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    address: IpAddr,
    length: u8,
}

impl Prefix {
    /// 127.0.0.0/8 and ::1: what the forwarder serves unless told otherwise.
    pub fn loopback() -> Vec<Self> {
        vec![
            Self {
                address: IpAddr::from([127, 0, 0, 0]),
                length: 8,
            },
            Self {
                address: std::net::Ipv6Addr::LOCALHOST.into(),
                length: 128,
            },
        ]
    }

    /// Reads `address[/length]`.
    pub fn parse(text: &str) -> Result<Self, PrefixError> {
        let (address, length) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| PrefixError::Address(text.to_string()))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let length =
            match length {
                None => max,
                Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max).ok_or_else(|| {
                    PrefixError::Length {
                        text: text.to_string(),
                        max,
                    }
                })?,
            };
        Ok(Self { address, length })
    }

    /// Whether `ip` is in the block (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(net)) << 96, self.length)
                    == masked(u128::from(u32::from(ip)) << 96, self.length)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), self.length) == masked(u128::from(ip), self.length)
            }
            _ => false,
        }
    }
}

/// Why a `[forward] allow` entry is not an address block.
#[derive(Debug, thiserror::Error)]
pub enum PrefixError {
    #[error("`{0}` is not an address or address/length")]
    Address(String),
    #[error("`{text}`: the length must be 0 to {max}")]
    Length { text: String, max: u8 },
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.length)
    }
}

/// The top `length` bits of `bits`.
fn masked(bits: u128, length: u8) -> u128 {
    match length {
        0 => 0,
        l => bits & (u128::MAX << (128 - u32::from(l.min(128)))),
    }
}

impl Checker<'_> {
    pub(super) fn limits(&self, raw: file::Limits) -> Result<Limits, ConfigError> {
        let d = Limits::default();
        let udp_max_payload = raw.udp_max_payload.unwrap_or(d.udp_max_payload);
        if udp_max_payload < 512 {
            return Err(self.invalid("limits.udp-max-payload", "must be at least 512"));
        }
        let ms = |key: &str, value: Option<u64>, default: Duration| {
            self.above_zero(key, value.map(Duration::from_millis), default)
        };
        let count =
            |key: &str, value: Option<usize>, default: usize| self.count(key, value, default);
        Ok(Limits {
            udp_max_payload,
            udp_slow_queries: count(
                "limits.udp-slow-queries",
                raw.udp_slow_queries,
                d.udp_slow_queries,
            )?,
            connections: count("limits.connections", raw.connections, d.connections)?,
            connections_per_source: count(
                "limits.connections-per-source",
                raw.connections_per_source,
                d.connections_per_source,
            )?,
            idle_timeout: ms(
                "limits.idle-timeout-ms",
                raw.idle_timeout_ms,
                d.idle_timeout,
            )?,
            message_timeout: ms(
                "limits.message-timeout-ms",
                raw.message_timeout_ms,
                d.message_timeout,
            )?,
            write_timeout: ms(
                "limits.write-timeout-ms",
                raw.write_timeout_ms,
                d.write_timeout,
            )?,
            handshake_timeout: ms(
                "limits.handshake-timeout-ms",
                raw.handshake_timeout_ms,
                d.handshake_timeout,
            )?,
            ..self.connection_limits(&raw, d)?
        })
    }

    /// The per-connection caps and the HTTP/2 settings of `[limits]`.
    fn connection_limits(&self, raw: &file::Limits, d: Limits) -> Result<Limits, ConfigError> {
        Ok(Limits {
            queries_per_connection: self.count(
                "limits.queries-per-connection",
                raw.queries_per_connection,
                d.queries_per_connection,
            )?,
            connection_lifetime: self.above_zero(
                "limits.connection-lifetime-secs",
                raw.connection_lifetime_secs.map(Duration::from_secs),
                d.connection_lifetime,
            )?,
            doh_streams: self.count("limits.doh-streams", raw.doh_streams, d.doh_streams)?,
            doh_header_bytes: self.at_least(
                "limits.doh-header-bytes",
                raw.doh_header_bytes,
                d.doh_header_bytes,
                1024,
            )?,
            doh_window_bytes: self.at_least(
                "limits.doh-window-bytes",
                raw.doh_window_bytes,
                d.doh_window_bytes,
                1024,
            )?,
            ..d
        })
    }

    pub(super) fn rrl(&self, raw: file::Rrl) -> Result<RrlConfig, ConfigError> {
        let responses_per_second = self.count(
            "rrl.responses-per-second",
            Some(raw.responses_per_second),
            0,
        )?;
        let ipv4_prefix_length = raw.ipv4_prefix_length.unwrap_or(DEFAULT_RRL_IPV4_PREFIX);
        if ipv4_prefix_length > 32 {
            return Err(self.invalid("rrl.ipv4-prefix-length", "must be 0 to 32"));
        }
        let ipv6_prefix_length = raw.ipv6_prefix_length.unwrap_or(DEFAULT_RRL_IPV6_PREFIX);
        if ipv6_prefix_length > 128 {
            return Err(self.invalid("rrl.ipv6-prefix-length", "must be 0 to 128"));
        }
        Ok(RrlConfig {
            responses_per_second,
            slip: raw.slip.unwrap_or(DEFAULT_RRL_SLIP),
            ipv4_prefix_length,
            ipv6_prefix_length,
            table_size: self.count("rrl.table-size", raw.table_size, DEFAULT_RRL_TABLE_SIZE)?,
            log_interval: self.above_zero(
                "rrl.log-interval-secs",
                raw.log_interval_secs.map(Duration::from_secs),
                Duration::from_secs(DEFAULT_RRL_LOG_INTERVAL_SECS),
            )?,
        })
    }

    /// `[forward] allow`, default loopback only; `max-in-flight`.
    pub(super) fn forward_limits(
        &self,
        allow: Option<Vec<String>>,
        max_in_flight: Option<usize>,
    ) -> Result<(Vec<Prefix>, usize), ConfigError> {
        let allow = match allow {
            None => Prefix::loopback(),
            Some(list) => list
                .iter()
                .map(|p| Prefix::parse(p).map_err(|e| self.invalid("forward.allow", e.to_string())))
                .collect::<Result<_, _>>()?,
        };
        let in_flight = self.count(
            "forward.max-in-flight",
            max_in_flight,
            DEFAULT_FORWARD_IN_FLIGHT,
        )?;
        Ok((allow, in_flight))
    }

    /// `[acme] http-timeout-secs` and `order-timeout-secs`.
    pub(super) fn acme_timeouts(
        &self,
        http: Option<u64>,
        order: Option<u64>,
    ) -> Result<(Duration, Duration), ConfigError> {
        let secs = |key: &str, value: Option<u64>, default: u64| {
            self.above_zero(
                key,
                value.map(Duration::from_secs),
                Duration::from_secs(default),
            )
        };
        Ok((
            secs(
                "acme.http-timeout-secs",
                http,
                DEFAULT_ACME_HTTP_TIMEOUT_SECS,
            )?,
            secs(
                "acme.order-timeout-secs",
                order,
                DEFAULT_ACME_ORDER_TIMEOUT_SECS,
            )?,
        ))
    }

    /// `value` (or `default`), which must be above 0.
    fn count<T: Copy + PartialEq + Default>(
        &self,
        key: &str,
        value: Option<T>,
        default: T,
    ) -> Result<T, ConfigError> {
        let value = value.unwrap_or(default);
        if value == T::default() {
            return Err(self.invalid(key, "must be above 0"));
        }
        Ok(value)
    }

    fn at_least(
        &self,
        key: &str,
        value: Option<u32>,
        default: u32,
        min: u32,
    ) -> Result<u32, ConfigError> {
        let value = value.unwrap_or(default);
        if value < min {
            return Err(self.invalid(key, format!("must be at least {min}")));
        }
        Ok(value)
    }

    pub(super) fn above_zero(
        &self,
        key: &str,
        value: Option<Duration>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let value = value.unwrap_or(default);
        if value.is_zero() {
            return Err(self.invalid(key, "must be above 0"));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_their_block_only() {
        let net = Prefix::parse("192.0.2.0/24").unwrap();
        assert!(net.contains("192.0.2.77".parse().unwrap()));
        assert!(net.contains("::ffff:192.0.2.1".parse().unwrap()));
        assert!(!net.contains("192.0.3.1".parse().unwrap()));
        assert!(!net.contains("2001:db8::1".parse().unwrap()));
        let v6 = Prefix::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(
            Prefix::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(
            Prefix::parse("10.0.0.1")
                .unwrap()
                .contains("10.0.0.1".parse().unwrap())
        );
        assert!(
            !Prefix::parse("10.0.0.1")
                .unwrap()
                .contains("10.0.0.2".parse().unwrap())
        );
        assert!(Prefix::parse("10.0.0.0/33").is_err());
        assert!(Prefix::parse("ten").is_err());
    }

    #[test]
    fn loopback_is_the_default_block() {
        let allow = Prefix::loopback();
        assert!(
            allow
                .iter()
                .any(|p| p.contains("127.9.9.9".parse().unwrap()))
        );
        assert!(allow.iter().any(|p| p.contains("::1".parse().unwrap())));
        assert!(
            !allow
                .iter()
                .any(|p| p.contains("192.0.2.1".parse().unwrap()))
        );
    }
}
