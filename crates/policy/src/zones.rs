//! Network zones: named client address ranges that policies can test (`context.zone`).
//! Safeguard: 45 CFR 164.312(a)(1) access control (e.g. administration only from the
//! management network).

use std::net::IpAddr;

use crate::PolicyError;

/// `context.zone` when no zones are configured.
pub const ANY_ZONE: &str = "any";
/// `context.zone` when zones are configured and the client address is in none of them.
/// The default policies refuse everything from it.
pub const OUTSIDE_ZONE: &str = "outside";

/// An address range such as `10.1.2.0/24` or `fd00::/8` (also the HTTP layer's trusted
/// proxy ranges).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `addr/prefix` (or a bare address, meaning that host only).
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let bad = || PolicyError::Config(format!("`{text}` is not an address range such as 10.1.2.0/24"));
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (text, None),
        };
        let network: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { network, prefix })
    }

    /// Whether `ip` is inside the range (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Cidr {
    type Err = PolicyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Cidr::parse(text.trim())
    }
}

/// The configured zones, in order: the first whose ranges hold the address names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Zones {
    zones: Vec<(String, Vec<Cidr>)>,
}

impl Zones {
    /// Zones from `(name, ranges)` pairs. Names are lower-case words; `any` and `outside`
    /// are reserved.
    pub fn new<'a>(zones: impl IntoIterator<Item = (&'a str, &'a [String])>) -> Result<Self, PolicyError> {
        let mut parsed = Vec::new();
        for (name, ranges) in zones {
            let valid =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit());
            if !valid || name == ANY_ZONE || name == OUTSIDE_ZONE {
                return Err(PolicyError::Config(format!(
                    "zone name `{name}` must be lower-case letters, digits and _, and not `any` or `outside`"
                )));
            }
            let ranges = ranges.iter().map(|r| Cidr::parse(r)).collect::<Result<Vec<_>, _>>()?;
            parsed.push((name.to_owned(), ranges));
        }
        Ok(Self { zones: parsed })
    }

    /// Whether any zone is configured.
    pub fn is_configured(&self) -> bool {
        !self.zones.is_empty()
    }

    /// The zone of a client address: [`ANY_ZONE`] without configuration, [`OUTSIDE_ZONE`]
    /// when no configured zone holds it (or the address is unknown).
    pub fn zone_of(&self, ip: Option<IpAddr>) -> &str {
        if self.zones.is_empty() {
            return ANY_ZONE;
        }
        let Some(ip) = ip else { return OUTSIDE_ZONE };
        self.zones
            .iter()
            .find(|(_, ranges)| ranges.iter().any(|r| r.contains(ip)))
            .map_or(OUTSIDE_ZONE, |(name, _)| name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("test address"))
    }

    #[test]
    fn addresses_fall_into_the_first_matching_zone() {
        let admin = vec!["10.1.2.0/24".to_owned()];
        let clinic = vec!["10.0.0.0/8".to_owned(), "fd00::/8".to_owned()];
        let zones = Zones::new([("admin", admin.as_slice()), ("clinic", clinic.as_slice())]).expect("zones");
        assert_eq!(zones.zone_of(ip("10.1.2.77")), "admin");
        assert_eq!(zones.zone_of(ip("10.1.3.1")), "clinic");
        assert_eq!(zones.zone_of(ip("::ffff:10.1.2.5")), "admin", "IPv4-mapped");
        assert_eq!(zones.zone_of(ip("fd12::1")), "clinic");
        assert_eq!(zones.zone_of(ip("192.0.2.1")), OUTSIDE_ZONE);
        assert_eq!(zones.zone_of(None), OUTSIDE_ZONE);
        assert_eq!(Zones::default().zone_of(ip("192.0.2.1")), ANY_ZONE);
    }

    #[test]
    fn bad_ranges_and_names_are_refused() {
        for bad in ["10.1.2.0/33", "10.1.2/24", "host.example", "::/129"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
        let r = vec!["10.0.0.0/8".to_owned()];
        assert!(Zones::new([("outside", r.as_slice())]).is_err());
        assert!(Zones::new([("Admin Net", r.as_slice())]).is_err());
        assert!(Cidr::parse("0.0.0.0/0").expect("all").contains("203.0.113.9".parse().expect("ip")));
    }
}
