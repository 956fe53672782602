//! E2B's Python SDK through a cluster: sandboxes made through each node, wherever placement
//! put them, then reached through every node (code, files, info, list, pause and connect,
//! kill). A phase of `cluster::a_three_node_cluster_routes_every_request_and_survives_its_faults`,
//! which owns the cluster (its fixed addresses allow one at a time).

use std::time::Duration;

use crate::clients::{expect_lines_of, run_script, script};
use crate::e2b::python;

const SCRIPT: &str = r#"
import os
from e2b_code_interpreter import Sandbox
from e2b import SandboxQuery

urls = os.environ["NODE_URLS"].split(",")
at = lambda u: {"api_url": f"{u}/compat/e2b", "sandbox_url": f"{u}/compat/e2b"}
made = []
for i, u in enumerate(urls):
    s = Sandbox.create(timeout=300, metadata={"suite": "cluster"}, **at(u))
    s.run_code(f"x = {i}")
    made.append(s)
print("created:", len({s.sandbox_id for s in made}))
ok = True
for i, s in enumerate(made):
    for j, u in enumerate(urls):
        c = Sandbox.connect(s.sandbox_id, **at(u))
        ok &= c.run_code("x").text == str(i)
        c.files.write(f"/home/user/from-{j}.txt", f"{i}-{j}")
        ok &= c.files.read(f"/home/user/from-{j}.txt") == f"{i}-{j}"
        ok &= c.get_info().sandbox_id == s.sandbox_id and c.is_running()
print("every sandbox through every node:", ok)
for u in urls:
    listed = Sandbox.list(query=SandboxQuery(metadata={"suite": "cluster"}), **at(u)).next_items()
    ok = sorted(x.sandbox_id for x in listed) == sorted(s.sandbox_id for s in made)
    print("listed through a node:", ok)
first = made[0]
print("pause through another node:", Sandbox.connect(first.sandbox_id, **at(urls[1])).pause())
print("resumed through a third:", Sandbox.connect(first.sandbox_id, **at(urls[2])).run_code("x").text)
kills = [Sandbox.kill(s.sandbox_id, **at(urls[(i + 1) % len(urls)])) for i, s in enumerate(made)]
again = [Sandbox.kill(s.sandbox_id, **at(urls[(i + 2) % len(urls)])) for i, s in enumerate(made)]
print("killed through other nodes:", kills, again)
print("running after kill:", [s.is_running() for s in made])
"#;

const EXPECTED: &str = r#"
created: 3
every sandbox through every node: True
listed through a node: True
listed through a node: True
listed through a node: True
pause through another node: True
resumed through a third: 0
killed through other nodes: [True, True, True] [False, False, False]
running after kill: [False, False, False]
"#;

/// Runs the SDK script against the nodes at `urls` (`http://host:port`, three) with `key`.
pub fn sdk_through_every_node(urls: &[String], key: &str, log: impl Fn() -> String) {
    let (_dir, path) = script("e2b_cluster.py", SCRIPT);
    let joined = urls.join(",");
    let env = [("NODE_URLS", joined.as_str()), ("E2B_API_KEY", key)];
    let ran = run_script(&python(), &path, &env, Duration::from_secs(600));
    expect_lines_of("e2b_cluster.py", &ran, EXPECTED, &log());
}
