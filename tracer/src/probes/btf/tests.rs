//! The BTF reader on hand-built blobs and on the running kernel.
use super::*;

// Names used by the fixture; `s` gives a name's offset in this string section.
const STRINGS: &str = "\0outer\0int\0short\0inner\0a\0b\0inner_t\0x\0in\0deep\0first\0bits\0odd\0\
    arr\0color\0RED\0BLUE\0big\0HUGE\0__data\0skb\0btf_trace_named\0btf_trace_ev\0\
    btf_trace_lone\0__bpf_trace_ev\0";
const KFLAG: u32 = 1 << 31;

fn s(name: &str) -> u32 {
    let at = STRINGS.find(&format!("\0{name}\0"));
    at.unwrap_or_else(|| panic!("{name} is not in STRINGS")) as u32 + 1
}

fn info(kind: u8, vlen: u32) -> u32 {
    u32::from(kind) << 24 | vlen
}

/// A header, then `types` (type id i+1 is `types[i]`) and `STRINGS`.
fn blob(types: &[&[u32]]) -> Vec<u8> {
    let bytes = |words: &[u32]| {
        words
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect::<Vec<_>>()
    };
    let (types, str_len) = (bytes(&types.concat()), STRINGS.len() as u32);
    let len = types.len() as u32;
    // Magic and version 1, header length, then the type and string sections' offset and length.
    let mut out = bytes(&[0x0001_eb9f, 24, 0, len, len, str_len]);
    out.extend(types.iter().chain(STRINGS.as_bytes()));
    out
}

/// `struct outer` nests an anonymous union holding `const inner_t`, an anonymous struct, a
/// bitfield, a misaligned member and an array; then enums and tracepoint-like typedefs.
#[rustfmt::skip]
fn fixture() -> Vec<u8> {
    blob(&[
        &[s("outer"), info(FWD, 0), 0],                                  // 1: not to shadow 11
        &[s("int"), info(INT, 0), 4, 32],                                // 2
        &[s("short"), info(INT, 0), 2, 16],                              // 3
        &[0, info(PTR, 0), 0],                                           // 4: void *
        &[s("inner"), info(STRUCT, 2), 8, s("a"), 2, 0, s("b"), 3, 32],  // 5
        &[0, info(CONST, 0), 5],                                         // 6
        &[s("inner_t"), info(TYPEDEF, 0), 6],                            // 7
        &[0, info(UNION, 2), 8, s("x"), 2, 0, s("in"), 7, 0],            // 8
        &[0, info(STRUCT, 1), 8, s("deep"), 4, 0],                       // 9
        &[0, info(ARRAY, 0), 0, 3, 2, 3],                                // 10: short[3]
        &[s("outer"), info(STRUCT, 6) | KFLAG, 40, s("first"), 2, 0,     // 11
          0, 8, 64, 0, 9, 128, s("bits"), 2, (3 << 24) | 0xc0, s("odd"), 3, 204, s("arr"), 10, 256],
        &[s("color"), info(ENUM, 2) | KFLAG, 4, s("RED"), -1i32 as u32, s("BLUE"), 7], // 12
        &[s("big"), info(ENUM64, 1), 8, s("HUGE"), 2, 1],                // 13
        &[0, info(FUNC_PROTO, 2), 0, s("__data"), 4, s("skb"), 2],       // 14
        &[0, info(PTR, 0), 14],                                          // 15
        &[s("btf_trace_named"), info(TYPEDEF, 0), 15],                   // 16
        &[0, info(FUNC_PROTO, 2), 0, 0, 4, 0, 2],                        // 17: unnamed params
        &[0, info(PTR, 0), 17],                                          // 18
        &[s("btf_trace_ev"), info(TYPEDEF, 0), 18],                      // 19
        &[s("btf_trace_lone"), info(TYPEDEF, 0), 18],                    // 20
        &[s("__bpf_trace_ev"), info(FUNC, 0), 14],                       // 21
    ])
}

fn parsed() -> Btf {
    ok(Btf::parse(fixture()), "parsing the fixture")
}

fn ok<T>(result: Result<T, BtfError>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {e:?}"))
}

fn err<T: std::fmt::Debug>(result: Result<T, BtfError>) -> String {
    let unexpected = |v| panic!("expected an error, got {v:?}");
    result.map_or_else(|e| e.to_string(), unexpected)
}

/// Offset and size of a member written "struct.member.member".
fn member(btf: &Btf, dotted: &str) -> (u32, u32) {
    let mut path = dotted.split('.');
    let name = path.next().unwrap_or_default();
    let path: Vec<&str> = path.collect();
    let offset = ok(btf.member_offset(name, &path), dotted);
    (offset, ok(btf.member_size(name, &path), dotted))
}

#[test]
fn finds_members_through_anonymous_nesting_and_modifiers() {
    let btf = parsed();
    let members = "outer.first outer.x outer.in outer.in.b outer.deep outer.arr";
    let found: Vec<_> = members.split(' ').map(|m| member(&btf, m)).collect();
    let want = [(0, 4), (8, 4), (8, 8), (12, 2), (16, 8), (32, 6)];
    assert_eq!(found, want, "offsets and sizes of {members}");
}

#[test]
fn says_what_it_could_not_find() {
    let btf = parsed();
    let outer = |path: &[&str]| err(btf.member_offset("outer", path));
    let got = [
        outer(&["nope"]),
        outer(&["in", "nope"]),
        outer(&["first", "a"]),
        outer(&["bits"]),
        outer(&["odd"]),
        err(btf.member_offset("missing", &["a"])),
        err(Btf::from_file(Path::new("/nonexistent/btf")).map(|_| ())),
        err(btf.typedef_fn_params("btf_trace_lone")),
        err(btf.typedef_fn_params("inner_t")),
    ];
    let want = [
        "struct outer has no member nope",
        "struct outer.in has no member nope",
        "struct outer.first is not a struct or union, so it has no members",
        "struct outer.bits is a bitfield; its offset is not a whole byte",
        "struct outer.odd is a bitfield; its offset is not a whole byte",
        "no struct or union missing in BTF",
        "reading BTF from /nonexistent/btf",
        "the prototype of typedef btf_trace_lone has unnamed parameters and no named twin",
        "typedef inner_t is not a pointer to a function prototype",
    ];
    assert_eq!(got, want);
}

#[test]
fn reads_enums_and_tracepoint_params() {
    let btf = parsed();
    let color = ok(btf.enum_values("color"), "enum color");
    assert_eq!(color, [("RED".into(), u64::MAX), ("BLUE".into(), 7)]);
    let big = ok(btf.enum_values("big"), "enum big");
    assert_eq!(big, [("HUGE".into(), 0x1_0000_0002)]);
    // btf_trace_ev's own prototype is unnamed; the names come from __bpf_trace_ev.
    for typedef in ["btf_trace_named", "btf_trace_ev"] {
        let params = ok(btf.typedef_fn_params(typedef), typedef);
        assert_eq!(params, ["__data", "skb"], "{typedef}");
    }
    // btf_trace_lone has no named twin: its parameters are known by their types only.
    let types = ok(btf.typedef_fn_param_types("btf_trace_lone"), "lone");
    assert_eq!(types, ["void *", "int"]);
    let types = ok(btf.typedef_fn_param_types("btf_trace_ev"), "ev");
    assert_eq!(types, ["void *", "int"]);
}

#[test]
fn malformed_data_is_an_error_never_a_panic() {
    let blob = fixture();
    let mut swapped = blob.clone();
    swapped.swap(0, 1);
    let unknown = blob_err(&[&[s("int"), info(INT, 0), 4, 32], &[0, info(20, 0), 0]]);
    let got = [err(Btf::parse(swapped).map(|_| ())), unknown];
    let want = [
        "not little-endian BTF: magic 0x9feb, expected 0xeb9f",
        "malformed BTF: type 2 has unknown kind 20",
    ];
    assert_eq!(got, want);
    for len in 0..blob.len() {
        let parsed = Btf::parse(blob[..len].to_vec());
        assert!(parsed.is_err(), "truncated to {len} bytes");
    }
    let corruptions = (0..blob.len()).flat_map(|at| [0, 1, 11, 127, 255].map(|b| (at, b)));
    for (at, byte) in corruptions {
        let mut corrupt = blob.clone();
        corrupt[at] = byte;
        let Ok(btf) = Btf::parse(corrupt) else {
            continue;
        };
        for path in [&["in", "b"][..], &["deep"], &["arr"], &["bits"]] {
            let _ = btf.member_offset("outer", path);
            let _ = btf.member_size("outer", path);
        }
        let _ = (btf.enum_values("color"), btf.enum_values("big"));
        let _ = btf.typedef_fn_params("btf_trace_ev");
    }
}

fn blob_err(types: &[&[u32]]) -> String {
    err(Btf::parse(blob(types)).map(|_| ()))
}

#[test]
fn reads_the_running_kernel() {
    if !Path::new(VMLINUX).exists() {
        eprintln!("skipped: {VMLINUX} does not exist on this machine");
        return;
    }
    let started = std::time::Instant::now();
    let btf = ok(Btf::from_file(Path::new(VMLINUX)), VMLINUX);
    eprintln!("parsed {VMLINUX} in {:?}", started.elapsed());
    let members = "sk_buff.head sk_buff.data sk_buff.len sk_buff.tail sk_buff.mac_header \
        sk_buff.network_header sk_buff.transport_header sk_buff.protocol sk_buff.dev sk_buff.sk \
        net_device.ifindex net_device.nd_net.net net.ns.inum sock.__sk_common.skc_net.net";
    for dotted in members.split_whitespace() {
        let (offset, size) = member(&btf, dotted);
        eprintln!("{dotted}: offset {offset}, size {size}");
    }
    let sizes = (
        member(&btf, "sk_buff.mac_header").1,
        member(&btf, "sk_buff.dev").1,
    );
    assert_eq!(sizes, (2, 8), "sizes of sk_buff.mac_header and sk_buff.dev");
    let reasons = ok(btf.enum_values("skb_drop_reason"), "enum skb_drop_reason");
    let reasons: HashMap<String, u64> = reasons.into_iter().collect();
    assert_eq!(reasons.get("SKB_NOT_DROPPED_YET"), Some(&0), "{reasons:?}");
    assert_eq!(reasons.get("SKB_CONSUMED"), Some(&1), "{reasons:?}");
    for reason in ["NETFILTER_DROP", "IP_RPFILTER", "NO_SOCKET"] {
        let name = format!("SKB_DROP_REASON_{reason}");
        assert!(reasons.contains_key(&name), "{name} in {reasons:?}");
    }
    let params = ok(btf.typedef_fn_params("btf_trace_kfree_skb"), "kfree_skb");
    assert_eq!(params, ["__data", "skb", "location", "reason", "rx_sk"]);
}
