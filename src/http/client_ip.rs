//! Which address a request came from, for per-client limits.
//!
//! Behind a reverse proxy or load balancer every request arrives from the proxy,
//! so a limit keyed on the peer address would throttle the whole city as one
//! client. `X-Forwarded-For` names the real client, but anyone can send that
//! header: it is believed only as far as the hops that appended to it are proxies
//! the operator listed in `server.trusted_proxies`.

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

/// The address of the client that sent `req`: the peer, or — when the peer is a
/// trusted proxy — the nearest `X-Forwarded-For` hop that is not one.
pub fn of_request(req: &HttpRequest, trusted_proxies: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok());
    Some(client_address(peer, forwarded, trusted_proxies))
}

/// What per-client limits count by. An IPv6 client usually holds a whole /64 and
/// can pick any address in it, so the /64 is counted as one client; an IPv4
/// address mapped into IPv6 counts as that IPv4 address.
pub fn limit_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => ipnet::Ipv6Net::new(v6, 64)
            .map(|net| net.trunc().to_string())
            .unwrap_or_else(|_| v6.to_string()),
    }
}

/// Walks the forwarding chain from the nearest hop outwards. Each proxy appends
/// the address it received the request from, so the rightmost entries are the
/// most trustworthy; the first one not among `trusted` is the client. A chain
/// made only of trusted proxies (or a garbled entry) stops the walk at the last
/// address that could be believed.
pub fn client_address<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted: &[IpNet],
) -> IpAddr {
    // A listener on `::` sees an IPv4 proxy as `::ffff:a.b.c.d`, while operators
    // list it as IPv4 (`10.0.0.0/8`): match either spelling, or the proxy would
    // count as the client and every citizen behind it would share one limit.
    let is_trusted = |ip: &IpAddr| {
        trusted
            .iter()
            .any(|net| net.contains(ip) || net.contains(&ip.to_canonical()))
    };
    if !is_trusted(&peer) {
        return peer;
    }
    // Several headers count as one list, in the order they arrived.
    let hops: Vec<&str> = forwarded_for
        .into_iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            Some(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`), as some proxies write it.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    hop.parse::<std::net::SocketAddr>()
        .ok()
        .map(|addr| addr.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter()
            .map(|s| s.parse().expect("test network"))
            .collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_address(ip("203.0.113.7"), ["198.51.100.1"], &trusted),
            ip("203.0.113.7")
        );
        assert_eq!(
            client_address(ip("203.0.113.7"), ["198.51.100.1"], &[]),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn a_trusted_proxy_passes_on_the_address_it_saw() {
        let trusted = nets(&["127.0.0.1/32"]);
        assert_eq!(
            client_address(ip("127.0.0.1"), ["198.51.100.1"], &trusted),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn entries_added_by_the_client_itself_are_ignored() {
        // The client forged "1.1.1.1"; the proxy appended the address it really saw.
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_address(ip("10.0.0.5"), ["1.1.1.1, 198.51.100.1"], &trusted),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn a_chain_of_trusted_proxies_is_walked_to_the_first_outsider() {
        let trusted = nets(&["10.0.0.0/8", "192.168.0.0/16"]);
        assert_eq!(
            client_address(
                ip("10.0.0.5"),
                ["1.1.1.1, 198.51.100.1, 192.168.1.1", "10.0.0.9"],
                &trusted
            ),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn a_trusted_peer_without_the_header_is_the_client() {
        let trusted = nets(&["127.0.0.0/8"]);
        assert_eq!(
            client_address(ip("127.0.0.1"), [], &trusted),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn a_garbled_entry_stops_the_walk_at_the_last_believable_hop() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_address(ip("10.0.0.5"), ["198.51.100.1, unknown"], &trusted),
            ip("10.0.0.5")
        );
        assert_eq!(
            client_address(ip("10.0.0.5"), ["garbage, 10.0.0.6"], &trusted),
            ip("10.0.0.6")
        );
    }

    #[test]
    fn a_trusted_proxy_seen_as_an_ipv4_mapped_address_is_still_trusted() {
        // A dual-stack listener (`server.host = "::"`) reports the IPv4 proxy
        // 10.0.0.5 as ::ffff:10.0.0.5; the operator listed 10.0.0.0/8.
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_address(ip("::ffff:10.0.0.5"), ["198.51.100.1"], &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_address(
                ip("::ffff:10.0.0.5"),
                ["198.51.100.1, ::ffff:10.0.0.9"],
                &trusted
            ),
            ip("198.51.100.1")
        );
        // A mapped address outside the list is still no proxy.
        assert_eq!(
            client_address(ip("::ffff:203.0.113.7"), ["198.51.100.1"], &trusted),
            ip("::ffff:203.0.113.7")
        );
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_prefix() {
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(
            limit_key(ip("2001:db8:1:2:bbbb::9")),
            limit_key(ip("2001:db8:1:2:aaaa::1"))
        );
        assert_eq!(limit_key(ip("::ffff:198.51.100.1")), "198.51.100.1");
        assert_eq!(limit_key(ip("198.51.100.1")), "198.51.100.1");
    }

    #[test]
    fn entries_with_ports_and_ipv6_are_understood() {
        let trusted = nets(&["::1/128", "10.0.0.0/8"]);
        assert_eq!(
            client_address(ip("::1"), ["[2001:db8::7]:4431"], &trusted),
            ip("2001:db8::7")
        );
        assert_eq!(
            client_address(ip("10.0.0.1"), ["198.51.100.1:55000"], &trusted),
            ip("198.51.100.1")
        );
    }
}
