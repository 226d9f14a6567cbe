//! The kernel under test as the loader sees it: the features it probes, printed for the kernel
//! matrix's table (`cargo xtask test`), and checked against each other so a misread BTF fails
//! here rather than as a wrong count elsewhere.

use crate::harness::kernel::features;

#[test]
fn features_the_loader_sees() {
    let f = features();
    let version: Vec<u32> = f
        .release
        .split(['.', '-', '+'])
        .take(2)
        .map(|n| n.parse().unwrap_or(0))
        .collect();
    let at_least = |major: u32, minor: u32| (version[0], version[1]) >= (major, minor);
    let drop_program = f.drop_program(tracer_common::drops::DropHook::Btf);
    eprintln!(
        "FEATURES TCX: {}; drop reasons: {}; kfree_skb({}): {}",
        if f.tcx { "yes" } else { "no (netlink tc)" },
        if f.drop_reasons {
            "yes"
        } else {
            "no (NOT_SPECIFIED)"
        },
        f.kfree_skb_args.join(", "),
        drop_program.as_ref().map_or_else(
            std::string::ToString::to_string,
            std::string::ToString::to_string
        ),
    );
    assert!(f.btf, "every kernel of the matrix has BTF");
    assert!(drop_program.is_ok(), "{drop_program:?}");
    // What BTF said, against what each feature's first release says. TRACER_NO_TCX is not set
    // in the test runs.
    assert_eq!(f.tcx, at_least(6, 6), "TCX read from BTF");
    assert_eq!(
        f.drop_reasons,
        at_least(5, 17),
        "drop reasons read from BTF"
    );
    assert_eq!(
        f.kfree_skb_args.len(),
        if at_least(6, 10) {
            4
        } else if at_least(5, 17) {
            3
        } else {
            2
        },
        "{:?}",
        f.kfree_skb_args
    );
    assert!(f.probe_read_kernel && f.ringbuf);
    assert_eq!(
        f.rdonly_cast.is_some(),
        at_least(6, 2),
        "bpf_rdonly_cast read from BTF"
    );
}
