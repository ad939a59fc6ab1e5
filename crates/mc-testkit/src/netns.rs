//! A throwaway Linux network namespace joined to this one by a veth pair with private /30
//! addresses and no default route: what runs inside reaches this namespace's veth address
//! and nothing else (the "office" of the gateway interop test). Needs root and `ip`.

use std::net::Ipv4Addr;
use std::process::Command;

/// See the module documentation. Deleted (with its veth pair) when dropped.
#[derive(Debug)]
pub struct NetNs {
    /// Namespace name (`ip netns exec <name> …`).
    pub name: String,
    /// This (root) namespace's end of the veth pair.
    pub host_addr: Ipv4Addr,
    /// The namespace's end.
    pub inner_addr: Ipv4Addr,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("running ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetNs {
    /// Creates namespace `mc-<tag>` and a veth pair in 10.231.<n>.0/30, where `n` is derived
    /// from the process id so parallel runs do not collide.
    pub fn create(tag: &str) -> Result<Self, String> {
        let n = (std::process::id() % 250) as u8 + 1;
        let name = format!("mc-{tag}-{}", std::process::id());
        let (host_if, inner_if) = (format!("mch{n}{tag}"), format!("mci{n}{tag}"));
        let (host_if, inner_if) = (
            host_if.chars().take(15).collect::<String>(),
            inner_if.chars().take(15).collect::<String>(),
        );
        let host_addr = Ipv4Addr::new(10, 231, n, 1);
        let inner_addr = Ipv4Addr::new(10, 231, n, 2);
        // A namespace left by a killed earlier run with the same pid is replaced.
        let _ = ip(&["netns", "del", &name]);
        let _ = ip(&["link", "del", &host_if]);
        ip(&["netns", "add", &name])?;
        let ns = Self {
            name: name.clone(),
            host_addr,
            inner_addr,
        };
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &inner_if,
        ])?;
        ip(&["link", "set", &inner_if, "netns", &name])?;
        ip(&["addr", "add", &format!("{host_addr}/30"), "dev", &host_if])?;
        ip(&["link", "set", &host_if, "up"])?;
        ip(&[
            "netns",
            "exec",
            &name,
            "ip",
            "addr",
            "add",
            &format!("{inner_addr}/30"),
            "dev",
            &inner_if,
        ])?;
        ip(&["netns", "exec", &name, "ip", "link", "set", &inner_if, "up"])?;
        ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd.kill_on_drop(true);
        cmd
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Whatever still runs inside (children of the programs started there) goes first;
        // deleting the namespace then removes its veth end, which removes the pair.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = ip(&["netns", "del", &self.name]);
    }
}
