use sandpit_agent::protocol::{EventBody, Op, UsageRequest};

use crate::helpers::*;

#[test]
fn usage_reports_the_cgroup_and_the_disk() {
    let mut agent = Agent::start();
    let answer = agent.ask(Op::Usage(UsageRequest {
        workdir: "/tmp".into(),
    }));
    let EventBody::Usage(usage) = answer else {
        panic!("{answer:?}")
    };
    assert!(usage.disk_size_bytes.is_some_and(|s| s > 0), "{usage:?}");
    assert!(usage.disk_used_bytes.is_some(), "{usage:?}");
    assert!(usage.cpu_ns.is_some_and(|c| c > 0), "{usage:?}");
    assert!(usage.memory_bytes.is_some(), "{usage:?}");
}

#[test]
fn usage_of_a_missing_folder_has_no_disk_figures() {
    let mut agent = Agent::start();
    let answer = agent.ask(Op::Usage(UsageRequest {
        workdir: "/no/such/folder".into(),
    }));
    let EventBody::Usage(usage) = answer else {
        panic!("{answer:?}")
    };
    assert_eq!((usage.disk_used_bytes, usage.disk_size_bytes), (None, None));
}
