//! The layouts, keys and hashes of the drop probe's shared types, checked on the host.

use super::*;

#[test]
fn a_key_built_of_words_is_the_key_of_its_fields() {
    let key = DropKey {
        location: 0xffff_ffff_8123_4567,
        ifindex: 7,
        reason: 6,
        class: 42,
        _reserved: [0; 7],
    };
    let words = DropKey::words_of(0xffff_ffff_8123_4567, 7, 6, 42);
    assert_eq!(key.words(), words);
    assert_eq!(*DropKey::from_words(&words), key);
}

fn flow(dport: u16) -> FlowKey {
    let mut key = FlowKey {
        ifindex: 3,
        reason: 6,
        class: 9,
        ..FlowKey::default()
    };
    key.outer.family = 4;
    key.outer.proto = 17;
    key.outer.sport = 40000;
    key.outer.dport = dport;
    key.outer.src[..4].copy_from_slice(&[10, 0, 0, 1]);
    key.outer.dst[..4].copy_from_slice(&[10, 0, 0, 2]);
    key
}

#[test]
fn a_flow_key_is_its_words() {
    let key = flow(4789);
    assert_eq!(FlowKey::from_words(key.words()), key);
    assert_ne!(FlowKey::from_words(flow(4790).words()), key);
    assert_eq!(Flow::from_words(key.outer.words()), key.outer);
    // The words are the flow's memory: the key's words 2 to 6 are its outer flow's.
    assert_eq!(key.outer.words()[..], key.words()[2..2 + FLOW_WORDS]);
}

#[test]
fn cache_heads_are_never_free_and_spread_over_the_entries() {
    let mut used = [0u32; DROP_FLOW_CACHE_PER_CPU as usize];
    for port in 0..4096 {
        let head = flow(port).head();
        assert_ne!(head, 0);
        used[flow_cache_index(head) as usize] += 1;
    }
    assert_ne!(flow_cache_head_of(|_| 0), 0);
    // 4096 flows over 128 entries: 32 each on average; no entry left empty, none crowded.
    assert!(used.iter().all(|&n| (8..=96).contains(&n)), "{used:?}");
}

/// A key's inner flow counts in its head only when the key says it has one: the probe hashes
/// and compares only the outer words of the keys (nearly all) that have none.
#[test]
fn the_inner_flow_counts_in_the_head_only_with_has_inner() {
    let outer = flow(4789);
    let mut stray = outer;
    stray.inner.dport = 6443;
    assert_eq!(stray.head(), outer.head());
    let mut inner = outer;
    inner.has_inner = 1;
    let mut other_inner = inner;
    other_inner.inner.dport = 6443;
    assert_ne!(other_inner.head(), inner.head());
    assert_ne!(inner.head(), outer.head());
    assert!(flow_key_has_inner(inner.words()[1]) && !flow_key_has_inner(outer.words()[1]));
    assert_eq!(OUTER_KEY_WORDS, 7);
}

/// Two ways flows of a storm differ: in a port, or in an address.
const APART_IN_ONE_FIELD: [fn(&mut FlowKey, u32); 2] = [
    |k, n| k.outer.dport = n as u16,
    |k, n| k.outer.src[..4].copy_from_slice(&(0x0a00_0000 | n).to_be_bytes()),
];

#[test]
fn flows_apart_in_one_field_spread_over_the_filter() {
    extern crate std;
    // 16,384 flows (the table full) differing in a port, then in an address: the filter
    // works when most slots stay empty, as they would for random slots (about 78% of
    // 65,536); one crowded slot would make every drop of its flows look in the table.
    for vary in APART_IN_ONE_FIELD {
        let mut slots = std::vec![0u32; DROP_FLOW_FILTER as usize];
        for n in 0..DROP_FLOWS {
            let mut key = flow(0);
            vary(&mut key, n);
            slots[flow_filter_index(key.head()) as usize] += 1;
        }
        let empty = slots.iter().filter(|&&n| n == 0).count();
        let crowded = slots.iter().max().copied().unwrap_or(0);
        assert!(
            empty > 47_000 && crowded <= 8,
            "{empty} empty, at most {crowded}"
        );
    }
}

#[test]
fn the_filter_sends_few_flows_it_does_not_hold_to_the_table() {
    extern crate std;
    // The storm the filter is for: the table full of 16,384 flows and drops of as many again
    // that it does not hold, flows apart in a port or an address. A slot counting one flow
    // turns away every other flow (unless their fingerprints are equal), so only slots of two
    // flows or more send them to the table: about 3% (a count alone would send about 22%).
    for vary in APART_IN_ONE_FIELD {
        let key = |n: u32| {
            let mut key = flow(0);
            vary(&mut key, n);
            key.head()
        };
        let mut slots = std::vec![0u64; DROP_FLOW_FILTER as usize];
        for n in 0..DROP_FLOWS {
            let head = key(n);
            let slot = &mut slots[flow_filter_index(head) as usize];
            *slot = slot.wrapping_add(flow_filter_term(head));
        }
        let holds = |head: u64| {
            flow_filter_may_hold(
                slots[flow_filter_index(head) as usize],
                flow_filter_term(head),
            )
        };
        // Every flow the table holds is let through.
        assert!((0..DROP_FLOWS).all(|n| holds(key(n))));
        let sent = (DROP_FLOWS..2 * DROP_FLOWS)
            .filter(|&n| holds(key(n)))
            .count();
        assert!(sent < DROP_FLOWS as usize / 20, "{sent} of {DROP_FLOWS}");
    }
}
