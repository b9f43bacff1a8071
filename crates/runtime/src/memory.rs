//! An in-memory [`ContainerRuntime`] for fast tests of the controllers' flows (feature
//! `testing`). It keeps containers, files and a log of every call; commands "run" by
//! answering from a table the test sets (default: exit 0, no output). Every path it
//! stands in for is covered against the real engine by the engine, load-balancer and
//! manager tests.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Error, ObjectKind, Result};
use crate::info::{
    ByteStream, ContainerInfo, ContainerState, ContainerSummary, EngineInfo, ExecOutput,
    ExecRequest, LabelFilter, NetworkAddresses,
};
use crate::runtime::ContainerRuntime;
use crate::spec::{ContainerSpec, NetworkSpec};

#[derive(Debug, Clone)]
struct Container {
    id: String,
    spec: ContainerSpec,
    running: bool,
    ip: Ipv4Addr,
    ipv6: Ipv6Addr,
    files: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, Default)]
struct State {
    containers: BTreeMap<String, Container>,
    next_ip: u8,
    /// Command line → what it answers (checked by prefix of the joined argv), and for how
    /// many more calls (`None`: from now on).
    answers: Vec<(String, ExecOutput, Option<usize>)>,
    /// Container → how many more starts the engine refuses with a server error.
    refused_starts: BTreeMap<String, usize>,
    calls: Vec<String>,
}

#[derive(Debug, Default)]
pub struct MemoryRuntime {
    state: Mutex<State>,
}

impl MemoryRuntime {
    pub fn new() -> Self {
        Self::default()
    }

    /// Commands whose joined argv starts with `prefix` answer `output` from now on.
    pub fn answer(&self, prefix: &str, output: ExecOutput) {
        self.lock()
            .answers
            .insert(0, (prefix.to_string(), output, None));
    }

    /// Commands whose joined argv starts with `prefix` answer `output` for the next
    /// `times` such calls, then as before (e.g. a node that boots after a few looks).
    pub fn answer_times(&self, prefix: &str, output: ExecOutput, times: usize) {
        self.lock()
            .answers
            .insert(0, (prefix.to_string(), output, Some(times)));
    }

    /// Every call so far, e.g. `create c-lb`, `exec c-lb /bin/sh -c kill -s HUP 1`.
    /// The next `times` starts of `container` fail as an engine that has just come back
    /// can fail them (HTTP 500).
    pub fn refuse_starts(&self, container: &str, times: usize) {
        self.lock()
            .refused_starts
            .insert(container.to_string(), times);
    }

    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// Names of the containers that exist, running or not.
    pub fn container_names(&self) -> Vec<String> {
        self.lock().containers.keys().cloned().collect()
    }

    /// The spec a container was created from.
    pub fn spec_of(&self, name: &str) -> Option<ContainerSpec> {
        self.lock().containers.get(name).map(|c| c.spec.clone())
    }

    /// Removes a container behind the provider's back (a user, a crash).
    pub fn vanish(&self, name: &str) {
        self.lock().containers.remove(name);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, call: String) {
        self.lock().calls.push(call);
    }
}

fn not_found(name: &str) -> Error {
    Error::NotFound {
        kind: ObjectKind::Container,
        name: name.to_string(),
    }
}

fn find<'a>(s: &'a mut State, name_or_id: &str) -> Option<&'a mut Container> {
    let key = s
        .containers
        .iter()
        .find(|(n, c)| *n == name_or_id || c.id == name_or_id)
        .map(|(n, _)| n.clone())?;
    s.containers.get_mut(&key)
}

#[async_trait]
impl ContainerRuntime for MemoryRuntime {
    fn endpoint(&self) -> &str {
        "memory://"
    }

    async fn engine_info(&self) -> Result<EngineInfo> {
        Ok(EngineInfo {
            product: "memory".into(),
            version: "0".into(),
            api_version: "0".into(),
        })
    }

    async fn host_capacity(&self) -> Result<crate::HostCapacity> {
        Ok(crate::HostCapacity {
            cpus: 2,
            memory_bytes: 8 << 30,
        })
    }

    async fn network_subnets(&self, _network: &str) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    async fn ensure_network(&self, spec: &NetworkSpec) -> Result<()> {
        self.record(format!("network {}", spec.name));
        Ok(())
    }

    async fn image_present(&self, _image: &str) -> Result<bool> {
        Ok(true)
    }

    async fn ensure_image(&self, _image: &str) -> Result<()> {
        Ok(())
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        self.record(format!("create {}", spec.name));
        let mut s = self.lock();
        if s.containers.contains_key(&spec.name) {
            return Err(Error::Conflict {
                operation: "create container",
                message: format!("name {} is in use", spec.name),
            });
        }
        s.next_ip = s.next_ip.wrapping_add(1).max(2);
        let c = Container {
            id: format!("id-{}", spec.name),
            spec: spec.clone(),
            running: false,
            ip: Ipv4Addr::new(172, 18, 0, s.next_ip),
            // Both families, as on kind's network (IPv4 and an IPv6 ULA subnet).
            ipv6: Ipv6Addr::new(0xfc00, 0xf853, 0xccd, 0xe793, 0, 0, 0, s.next_ip.into()),
            files: BTreeMap::new(),
        };
        let id = c.id.clone();
        s.containers.insert(spec.name.clone(), c);
        Ok(id)
    }

    async fn start_container(&self, container: &str) -> Result<()> {
        self.record(format!("start {container}"));
        let mut s = self.lock();
        if let Some(left) = s.refused_starts.get_mut(container).filter(|n| **n > 0) {
            *left -= 1;
            return Err(Error::Engine {
                operation: "start container",
                status: 500,
                message: "failed to update store for object type *libnetwork.endpoint".into(),
            });
        }
        find(&mut s, container)
            .ok_or_else(|| not_found(container))?
            .running = true;
        Ok(())
    }

    async fn inspect_container(&self, container: &str) -> Result<Option<ContainerInfo>> {
        let mut s = self.lock();
        Ok(find(&mut s, container).map(|c| {
            let network = c.spec.network.clone().unwrap_or_else(|| "bridge".into());
            let networks = if c.running {
                BTreeMap::from([(
                    network,
                    NetworkAddresses {
                        ipv4: Some(c.ip),
                        ipv6: Some(c.ipv6),
                    },
                )])
            } else {
                BTreeMap::new()
            };
            ContainerInfo {
                id: c.id.clone(),
                name: c.spec.name.clone(),
                image: c.spec.image.clone(),
                labels: c.spec.labels.clone(),
                state: if c.running {
                    ContainerState::Running
                } else {
                    ContainerState::Exited
                },
                exit_code: None,
                restart_count: 0,
                finished_at: None,
                networks,
                ports: Vec::new(),
            }
        }))
    }

    async fn list_containers(&self, filter: &LabelFilter) -> Result<Vec<ContainerSummary>> {
        let s = self.lock();
        Ok(s.containers
            .values()
            .filter(|c| filter.matches(&c.spec.name, &c.spec.labels))
            .map(|c| ContainerSummary {
                id: c.id.clone(),
                name: c.spec.name.clone(),
                image: c.spec.image.clone(),
                labels: c.spec.labels.clone(),
                state: if c.running {
                    ContainerState::Running
                } else {
                    ContainerState::Exited
                },
                status: String::new(),
            })
            .collect())
    }

    async fn exec(&self, container: &str, request: ExecRequest) -> Result<ExecOutput> {
        let line = request.display();
        self.record(format!("exec {container} {line}"));
        let mut s = self.lock();
        let i = s
            .answers
            .iter()
            .position(|(p, _, left)| line.starts_with(p.as_str()) && left.is_none_or(|n| n > 0));
        let answer = i.map(|i| {
            let (_, o, left) = &mut s.answers[i];
            if let Some(n) = left {
                *n -= 1;
            }
            o.clone()
        });
        let c = find(&mut s, container).ok_or_else(|| not_found(container))?;
        if !c.running {
            return Err(Error::Conflict {
                operation: "exec",
                message: format!("container {container} is not running"),
            });
        }
        Ok(answer.unwrap_or(ExecOutput {
            stdout: Vec::new(),
            stderr: Vec::new(),
            exit_code: 0,
        }))
    }

    async fn signal(&self, container: &str, signal: &str) -> Result<()> {
        self.record(format!("signal {container} {signal}"));
        Ok(())
    }

    async fn stop_container(&self, container: &str, _grace: Duration) -> Result<()> {
        self.record(format!("stop {container}"));
        let mut s = self.lock();
        find(&mut s, container)
            .ok_or_else(|| not_found(container))?
            .running = false;
        Ok(())
    }

    async fn remove_container(&self, container: &str) -> Result<()> {
        self.record(format!("remove {container}"));
        let mut s = self.lock();
        let key = s
            .containers
            .iter()
            .find(|(n, c)| *n == container || c.id == container)
            .map(|(n, _)| n.clone());
        if let Some(k) = key {
            s.containers.remove(&k);
        }
        Ok(())
    }

    async fn write_file(
        &self,
        container: &str,
        path: &str,
        contents: &[u8],
        _mode: u32,
    ) -> Result<()> {
        self.record(format!("write {container} {path}"));
        let mut s = self.lock();
        find(&mut s, container)
            .ok_or_else(|| not_found(container))?
            .files
            .insert(path.to_string(), contents.to_vec());
        Ok(())
    }

    async fn read_file(&self, container: &str, path: &str) -> Result<Vec<u8>> {
        let mut s = self.lock();
        let c = find(&mut s, container).ok_or_else(|| not_found(container))?;
        c.files.get(path).cloned().ok_or_else(|| Error::NotFound {
            kind: ObjectKind::Container,
            name: format!("{container}:{path}"),
        })
    }

    async fn save_image(&self, image: &str) -> Result<ByteStream> {
        self.record(format!("save {image}"));
        Ok(Box::pin(futures::stream::empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn containers_live_and_die_with_addresses_while_running() {
        let rt = MemoryRuntime::new();
        let spec = ContainerSpec::new("c-lb", "img").label("k", "v");
        rt.run_container(&spec).await.unwrap();
        let info = rt.inspect_container("c-lb").await.unwrap().unwrap();
        assert!(info.state.is_running());
        assert!(info.addresses(None).and_then(|a| a.ipv4).is_some());
        assert!(info.addresses(None).and_then(|a| a.ipv6).is_some());
        assert!(rt.create_container(&spec).await.unwrap_err().is_conflict());
        assert_eq!(
            rt.list_containers(&LabelFilter::new().with("k", "v"))
                .await
                .unwrap()
                .len(),
            1
        );
        rt.write_file("c-lb", "/x", b"1", 0o644).await.unwrap();
        assert_eq!(rt.read_file("c-lb", "/x").await.unwrap(), b"1");
        rt.answer(
            "false",
            ExecOutput {
                stdout: vec![],
                stderr: b"no".to_vec(),
                exit_code: 1,
            },
        );
        assert!(!rt
            .exec("c-lb", ExecRequest::new(["false"]))
            .await
            .unwrap()
            .success());
        rt.remove_container("c-lb").await.unwrap();
        assert!(rt.inspect_container("c-lb").await.unwrap().is_none());
        assert!(rt
            .exec("c-lb", ExecRequest::new(["true"]))
            .await
            .unwrap_err()
            .is_not_found());
    }
}
