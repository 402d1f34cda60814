//! Telling the service from whatever else answers on its port. While the service restarts
//! its port is free, and any local user may take it; that user must then get no key from the
//! agent, and its answers must not count as the service's.
//!
//! So a request that carries a key, or whose answer stands for the service's health, goes
//! over a TCP connection the agent opens itself and checks before it writes a byte: the
//! kernel's table of sockets (`/proc/net/tcp`, `/proc/net/tcp6`) holds the server's end of
//! that very connection, and the server's end belongs to the user who owns the listening
//! socket (an accepted connection carries its listener's owner, even before the service calls
//! `accept`). If that is not the service's account (`[checks] service_user`, or the owner of
//! `service_dir`), nothing is sent. The service's account could read the key from its own
//! config anyway; no one else's process ever sees it. What cannot be checked this way (TLS to
//! the service, an address not on this host) gets no key either.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::netstat::{self, Socket};
use super::Service;
use crate::fsutil::{self, Dir};

/// How long connecting to the service may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The most bytes of one socket table read.
const TABLE_MAX: u64 = 64 << 20;
/// The most bytes of a process's environment read.
const ENVIRON_MAX: u64 = 1 << 20;

/// An answer from the service's own process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The process listening where the answer came from, when it could be found.
    pub pid: Option<u32>,
}

/// Why no answer from the service counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoAnswer {
    /// Nothing answered (not started yet, or gone): worth trying again.
    Unreachable(String),
    /// Something that is not the service holds the port: nothing was sent to it.
    NotTheService(String),
    /// The agent cannot tell who answers (no account known, TLS, another host).
    Unchecked(String),
}

impl std::fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoAnswer::Unreachable(why)
            | NoAnswer::NotTheService(why)
            | NoAnswer::Unchecked(why) => f.write_str(why),
        }
    }
}

/// A request for [`Service::request_own`].
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: Option<&'a str>,
    pub timeout: Duration,
    /// The request presents no key (a liveness probe): see `ProbeLog`.
    pub keyless: bool,
}

impl Service<'_> {
    /// The uid of the service's account: `service_user`, or the owner of `service_dir`.
    pub fn account(&self) -> Result<u32, String> {
        let owner = match (self.dir(), &self.settings.user) {
            (_, Some(_)) => 0,
            (Some(dir), None) => Dir::open(dir)
                .and_then(|d| d.facts())
                .map_err(|e| format!("cannot tell the service's account: {e}"))?
                .uid,
            (None, None) => {
                return Err(
                    "neither [checks] service_user nor service_dir is set, so the agent cannot tell the service's process from another on its port"
                        .into(),
                )
            }
        };
        self.account_uid(owner)
    }

    /// Send `call` to the service over a connection whose far end the kernel says belongs to
    /// the service's account; nothing is written before that is known.
    pub async fn request_own(&self, call: Call<'_>) -> Result<Answer, NoAnswer> {
        // A key presented as a query parameter is in `call.url`: messages show it without.
        let shown = call.url.split('?').next().unwrap_or_default();
        let url = reqwest::Url::parse(call.url)
            .map_err(|e| NoAnswer::Unchecked(format!("{shown}: {e}")))?;
        if url.scheme() != "http" {
            return Err(NoAnswer::Unchecked(format!(
                "{shown} is not plain HTTP: the agent can tie only a plain HTTP connection on this host to the service's process"
            )));
        }
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return Err(NoAnswer::Unchecked(format!("{shown} names no host")));
        };
        let want = self.account().map_err(NoAnswer::Unchecked)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| NoAnswer::Unreachable(format!("{host}: {e}")))?
            .collect();
        let mut last = NoAnswer::Unreachable(format!("{host}:{port} has no address"));
        for addr in addrs {
            let stream =
                match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
                    .await
                {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        last = NoAnswer::Unreachable(format!("{addr}: {e}"));
                        continue;
                    }
                    Err(_) => {
                        last = NoAnswer::Unreachable(format!("{addr}: no connection"));
                        continue;
                    }
                };
            let (local, peer) = match (stream.local_addr(), stream.peer_addr()) {
                (Ok(local), Ok(peer)) => (local, peer),
                _ => {
                    last = NoAnswer::Unreachable(format!("{addr}: the connection closed"));
                    continue;
                }
            };
            let tables = tables().map_err(NoAnswer::Unchecked)?;
            // The server's end of this very connection.
            let far = tables.iter().find(|s| {
                s.state == netstat::ESTABLISHED && same(s.local, peer) && same(s.remote, local)
            });
            match far {
                None => {
                    return Err(NoAnswer::Unchecked(format!(
                        "the connection to {peer} does not end on this host, so the agent cannot tell who answers there"
                    )))
                }
                Some(far) if far.uid != want => {
                    return Err(NoAnswer::NotTheService(format!(
                        "{peer} is held by a process of uid {}, not the service's account (uid {want}); nothing was sent to it",
                        far.uid
                    )))
                }
                Some(_) => {}
            }
            // The agent's own request: the lines it makes in the service's logs are known as
            // the agent's (see `probes`).
            let probe = self.probes.begin(url.path());
            if call.keyless {
                probe.keyless();
            }
            let marks = probe.headers();
            let status = send(stream, host, &url, call, &marks)
                .await
                .map_err(NoAnswer::Unreachable)?;
            // A request the service accepted made no failed sign-in either (a rotation's key
            // check): someone else's wrong password just after it is not the agent's.
            if (200..300).contains(&status) {
                probe.keyless();
            }
            drop(probe);
            let pid = tables
                .iter()
                .find(|s| {
                    s.state == netstat::LISTEN && s.uid == want && netstat::takes(s.local, peer)
                })
                .and_then(|listener| pid_of(listener.inode));
            return Ok(Answer { status, pid });
        }
        Err(last)
    }
}

/// Both socket tables.
fn tables() -> Result<Vec<Socket>, String> {
    let mut all = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        match fsutil::read_text(Path::new(table), TABLE_MAX) {
            Ok(text) => all.extend(netstat::parse(&text)),
            // No IPv6 on this host: no IPv6 sockets.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read {table}: {e}")),
        }
    }
    Ok(all)
}

fn same(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && netstat::takes(a, b) && netstat::takes(b, a)
}

/// One HTTP/1.1 request over `stream`; the status of the answer.
async fn send(
    stream: tokio::net::TcpStream,
    host: &str,
    url: &reqwest::Url,
    call: Call<'_>,
    marks: &[(&str, String)],
) -> Result<u16, String> {
    let exchange = async {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
        let driver = tokio::spawn(connection);
        let target = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let host_header = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or(host)),
            None => url.host_str().unwrap_or(host).to_owned(),
        };
        let mut request = hyper::Request::builder()
            .method(call.method)
            .uri(target)
            .header("host", host_header);
        for (name, value) in marks {
            request = request.header(*name, value.as_str());
        }
        for (name, value) in call.headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(call.body.unwrap_or_default().to_owned())
            .map_err(|e| e.to_string())?;
        let answer = sender.send_request(request).await;
        driver.abort();
        answer
            .map(|response| response.status().as_u16())
            .map_err(|e| e.to_string())
    };
    tokio::time::timeout(call.timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {} s", call.timeout.as_secs()))?
}

/// The process holding the socket `inode` (from `/proc/*/fd`), if the agent may look.
fn pid_of(inode: u64) -> Option<u32> {
    if inode == 0 {
        return None;
    }
    let target = format!("socket:[{inode}]");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let fds = std::fs::read_dir(entry.path().join("fd")).ok()?;
            fds.flatten()
                .any(|fd| {
                    std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == target.as_str())
                })
                .then_some(pid)
        })
}

impl Service<'_> {
    /// The process listening where `service_url` points, if it is the service's account's and
    /// the agent may see it (root, or `CAP_SYS_PTRACE`, or the same account).
    pub fn listening_pid(&self) -> Result<u32, String> {
        let url = self
            .settings
            .url
            .as_deref()
            .ok_or("no service_url is configured, so the service's process cannot be found")?;
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("service_url {url}: {e}"))?;
        let (Some(host), Some(port)) = (parsed.host_str(), parsed.port_or_known_default()) else {
            return Err(format!("service_url {url} names no host"));
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let targets: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
            .map_err(|e| format!("{host}: {e}"))?
            .collect();
        let want = self.account()?;
        let tables = tables()?;
        let listener = tables
            .iter()
            .find(|s| {
                s.state == netstat::LISTEN
                    && s.uid == want
                    && targets.iter().any(|t| netstat::takes(s.local, *t))
            })
            .ok_or_else(|| {
                format!("no process of the service's account (uid {want}) listens on {host}:{port}")
            })?;
        pid_of(listener.inode).ok_or_else(|| {
            format!(
                "the process listening on {host}:{port} cannot be seen (the agent needs root or CAP_SYS_PTRACE)"
            )
        })
    }
}

/// The environment of process `pid`, in order (`/proc/PID/environ`, at most 1 MiB).
pub fn environment(pid: u32) -> Result<Vec<(String, String)>, String> {
    let path = format!("/proc/{pid}/environ");
    let bytes = fsutil::read_limited(Path::new(&path), ENVIRON_MAX)
        .map_err(|e| format!("cannot read {path}: {e}"))?;
    Ok(bytes
        .split(|&b| b == 0)
        .filter_map(|pair| {
            let pair = std::str::from_utf8(pair).ok()?;
            let (name, value) = pair.split_once('=')?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect())
}

/// The names of the variables in the environment of process `pid` whose value is `value`.
pub fn environment_holding(pid: u32, value: &str) -> Result<Vec<String>, String> {
    let path = format!("/proc/{pid}/environ");
    let bytes = fsutil::read_limited(Path::new(&path), ENVIRON_MAX)
        .map_err(|e| format!("cannot read {path}: {e}"))?;
    Ok(bytes
        .split(|&b| b == 0)
        .filter_map(|pair| {
            let pair = std::str::from_utf8(pair).ok()?;
            let (name, found) = pair.split_once('=')?;
            (found == value).then(|| name.to_owned())
        })
        .collect())
}
