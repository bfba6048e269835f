//! The host's network interfaces, as `pnet_datalink` enumerates them (getifaddrs): name, index,
//! addresses with their prefix length, MAC, flags, and the MTU from /sys where Linux has it.
//! Used by `wirelag interfaces` and to check an interface name before libpcap is asked to open
//! it. Enumeration only: frames are never captured through pnet (it has no kernel timestamps).

use serde::Serialize;

/// One interface address with its prefix length (`127.0.0.1`/8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AddressInfo {
    /// "inet" or "inet6", as iproute2 names them.
    pub family: &'static str,
    pub address: String,
    pub prefix_len: u8,
}

/// One interface. Serialised as an element of `wirelag.interfaces/v1`'s `interfaces`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InterfaceInfo {
    pub name: String,
    /// The kernel's interface index (`ip link`'s number); 0 when it could not be read.
    pub index: u32,
    /// Hardware address, lower-case hex with colons; None when the interface has none.
    pub mac: Option<String>,
    pub mtu: Option<u32>,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// The driver reports it operational (IFF_RUNNING).
    pub running: bool,
    pub loopback: bool,
    pub broadcast: bool,
    pub multicast: bool,
    pub point_to_point: bool,
    pub addresses: Vec<AddressInfo>,
}

impl InterfaceInfo {
    /// The flags that are set, in iproute2's spelling, for the table.
    pub fn flag_names(&self) -> Vec<&'static str> {
        [
            (self.up, "UP"),
            (self.running, "RUNNING"),
            (self.loopback, "LOOPBACK"),
            (self.broadcast, "BROADCAST"),
            (self.multicast, "MULTICAST"),
            (self.point_to_point, "POINTOPOINT"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect()
    }
}

/// Every interface, in the order getifaddrs lists them (by index on Linux).
pub fn list() -> Vec<InterfaceInfo> {
    let mut list: Vec<InterfaceInfo> = pnet_datalink::interfaces()
        .into_iter()
        .map(|i| {
            let (up, loopback) = (i.is_up(), i.is_loopback());
            let (broadcast, multicast) = (i.is_broadcast(), i.is_multicast());
            InterfaceInfo {
                mtu: mtu_of(&i.name),
                up,
                running: is_running(&i),
                loopback,
                broadcast,
                multicast,
                point_to_point: i.is_point_to_point(),
                index: i.index,
                mac: i.mac.map(|m| m.to_string()),
                addresses: i
                    .ips
                    .iter()
                    .map(|net| AddressInfo {
                        family: if net.is_ipv4() { "inet" } else { "inet6" },
                        address: net.ip().to_string(),
                        prefix_len: net.prefix(),
                    })
                    .collect(),
                name: i.name,
            }
        })
        .collect();
    // getifaddrs lists AF_PACKET entries first, in index order; addresses of an interface that
    // has no link entry (rare) come after. Index order is what `ip addr` shows.
    list.sort_by_key(|i| (i.index == 0, i.index));
    list
}

/// The interface names, in [`list`]'s order.
pub fn names() -> Vec<String> {
    list().into_iter().map(|i| i.name).collect()
}

#[cfg(unix)]
fn is_running(i: &pnet_datalink::NetworkInterface) -> bool {
    i.is_running()
}

#[cfg(not(unix))]
fn is_running(_: &pnet_datalink::NetworkInterface) -> bool {
    false
}

/// The MTU from sysfs (Linux); None elsewhere or when the file is missing or odd. The name is
/// checked so it cannot walk out of /sys/class/net.
fn mtu_of(name: &str) -> Option<u32> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return None;
    }
    let path = std::path::Path::new("/sys/class/net")
        .join(name)
        .join("mtu");
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_listed_with_its_address() {
        let all = list();
        let lo = all.iter().find(|i| i.name == "lo").expect("lo listed");
        assert!(lo.loopback && lo.up, "{lo:?}");
        assert!(lo.index > 0, "{lo:?}");
        assert!(
            lo.addresses
                .iter()
                .any(|a| a.address == "127.0.0.1" && a.prefix_len == 8 && a.family == "inet"),
            "{lo:?}"
        );
        assert!(lo.flag_names().contains(&"LOOPBACK"));
        assert!(lo.mtu.is_some_and(|m| m > 0), "{lo:?}");
        assert!(names().iter().any(|n| n == "lo"));
    }

    #[test]
    fn mtu_refuses_odd_names() {
        assert_eq!(mtu_of("../../etc"), None);
        assert_eq!(mtu_of(".."), None);
        assert_eq!(mtu_of(""), None);
    }
}
