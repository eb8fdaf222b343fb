//! The hosts of generated fleets, for the tests that load large inventories: the
//! resolver's unit tests (`src/inventory/resolve/tests.rs`, through `#[path]`) and
//! `tests/inventory_bounds.rs`. Only std.

/// Host `i` as an item of `hosts:`: `kvm<i>.example.org`, a MAC made of `i` and an
/// address in the /16 whose first two octets are `net` (`192.168`), 200 hosts to a
/// third octet.
pub fn host_item(i: usize, net: &str) -> String {
    format!(
        "  - fqdn: kvm{i}.example.org\n    mac: \"02:00:00:00:{:02x}:{:02x}\"\n    ip: {net}.{}.{}\n",
        i / 256,
        i % 256,
        1 + i / 200,
        10 + i % 200
    )
}
