//! Who the client is behind our own proxies. `X-Forwarded-For` is a list each proxy
//! appends the address it saw to; only the part written by proxies we trust is true.

use std::net::IpAddr;

use ipnet::IpNet;

/// Longest header read; a real chain is a handful of addresses.
const MAX_HEADER: usize = 1024;

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    let ip = canonical(ip);
    proxies.iter().any(|n| n.contains(&ip))
}

/// IPv4 seen through an IPv6 socket (`::ffff:a.b.c.d`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client's address: the peer itself unless it is a trusted proxy; then, walking
/// `X-Forwarded-For` from the right, the first address no trusted proxy owns. A header
/// that cannot be read, or whose entries are all trusted, leaves the last address known.
pub fn client_ip<'a>(peer: IpAddr, forwarded_for: impl IntoIterator<Item = &'a str>, proxies: &[IpNet]) -> IpAddr {
    let mut client = canonical(peer);
    if !trusted(client, proxies) {
        return client;
    }
    // Several headers are one list, in order.
    let headers: Vec<&str> = forwarded_for.into_iter().collect();
    if headers.iter().map(|h| h.len()).sum::<usize>() > MAX_HEADER {
        return client;
    }
    for entry in headers.iter().rev().flat_map(|h| h.rsplit(',')) {
        let Some(ip) = parse_entry(entry) else {
            // An entry we cannot read ends what we can vouch for.
            return client;
        };
        client = canonical(ip);
        if !trusted(client, proxies) {
            return client;
        }
    }
    client
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let e = entry.trim();
    if let Ok(ip) = e.parse() {
        return Some(ip);
    }
    if let Some(rest) = e.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    e.parse::<std::net::SocketAddr>().ok().map(|s| s.ip())
}

/// `X-Forwarded-Proto: https` from a trusted proxy: the client spoke TLS to it.
pub fn forwarded_https<'a>(
    peer: IpAddr,
    forwarded_proto: impl IntoIterator<Item = &'a str>,
    proxies: &[IpNet],
) -> bool {
    trusted(peer, proxies)
        && forwarded_proto
            .into_iter()
            .next()
            .and_then(|h| h.split(',').next())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let got = client_ip(ip("203.0.113.7"), ["1.1.1.1"], &nets(&["10.0.0.0/8"]));
        assert_eq!(got, ip("203.0.113.7"));
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_entry_wins() {
        let proxies = nets(&["10.0.0.0/8", "127.0.0.1/32"]);
        // A client forging "6.6.6.6" in front of its real address gets its real address.
        let got = client_ip(ip("127.0.0.1"), ["6.6.6.6, 198.51.100.4, 10.0.0.2"], &proxies);
        assert_eq!(got, ip("198.51.100.4"));
        let split = client_ip(ip("127.0.0.1"), ["6.6.6.6", "198.51.100.4:5555, 10.0.0.2"], &proxies);
        assert_eq!(split, ip("198.51.100.4"));
        let v6 = client_ip(ip("::ffff:10.0.0.9"), ["[2001:db8::5]:443"], &proxies);
        assert_eq!(v6, ip("2001:db8::5"));
    }

    #[test]
    fn unreadable_or_all_trusted_chains_stop_at_the_last_known_address() {
        let proxies = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), ["garbage, 10.0.0.3"], &proxies),
            ip("10.0.0.3")
        );
        assert_eq!(client_ip(ip("10.0.0.1"), ["10.0.0.2"], &proxies), ip("10.0.0.2"));
        assert_eq!(client_ip(ip("10.0.0.1"), [], &proxies), ip("10.0.0.1"));
        let long = "1.2.3.4,".repeat(300);
        assert_eq!(client_ip(ip("10.0.0.1"), [long.as_str()], &proxies), ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_proto_counts_only_from_a_trusted_proxy() {
        let proxies = nets(&["10.0.0.0/8"]);
        assert!(forwarded_https(ip("10.0.0.1"), ["https"], &proxies));
        assert!(!forwarded_https(ip("203.0.113.1"), ["https"], &proxies));
        assert!(!forwarded_https(ip("10.0.0.1"), ["http"], &proxies));
    }

    proptest! {
        /// Whatever the header says, the answer is the peer or an address the header names,
        /// and never one a trusted proxy owns unless nothing else is known.
        #[test]
        fn the_client_is_the_peer_or_named_in_the_header(header in "[0-9a-f:.,\\[\\] ]{0,80}", last in 0u8..=255) {
            let proxies = nets(&["10.0.0.0/8"]);
            let peer = IpAddr::from([10, 0, 0, last]);
            let got = client_ip(peer, [header.as_str()], &proxies);
            let named = header.split(',').filter_map(parse_entry).map(canonical).any(|a| a == got);
            prop_assert!(got == peer || named);
        }

        #[test]
        fn an_untrusted_peer_is_never_overridden(header in "\\PC{0,80}", a in 11u8..=254) {
            let peer = IpAddr::from([a, 1, 2, 3]);
            prop_assert_eq!(client_ip(peer, [header.as_str()], &nets(&["10.0.0.0/8"])), peer);
        }
    }
}
