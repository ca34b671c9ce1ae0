//! Newline-delimited JSON-RPC upstreams: an MCP server run as a supervised child process (stdio),
//! or the built-in demo served in process over the same framing.
//!
//! Supervision: when the process exits, requests in flight fail with a clear error, and the next
//! request starts it again after a backoff (doubling from 100 ms to 30 s while it keeps failing),
//! replaying the client's `initialize` so the session carries on. Its stderr goes to the logs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use super::{Exchange, Inbox, RequestCtx, UpMsg, Upstream, UpstreamError};
use crate::jsonrpc::{Kind, upstream_head};

/// Largest message accepted from a connector (protects the gateway's memory).
pub const MAX_LINE_BYTES: usize = 32 << 20;
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// How to start the server behind a line upstream.
#[derive(Debug, Clone)]
pub enum Launch {
    /// A child process.
    Process {
        /// Program.
        command: String,
        /// Arguments.
        args: Vec<String>,
        /// Environment given to it (on top of PATH, HOME, LANG, TMPDIR).
        env: BTreeMap<String, String>,
        /// Working directory.
        cwd: Option<String>,
    },
    /// The built-in demo connector, in process.
    Demo,
}

type Pending = HashMap<Box<str>, mpsc::Sender<Result<UpMsg, UpstreamError>>>;

/// One running transport (one process, or one in-process demo instance).
struct Conn {
    writer: mpsc::Sender<Bytes>,
    pending: Mutex<Pending>,
    /// progressToken (JSON text) -> request id, so progress reaches the request's stream.
    progress: Mutex<HashMap<Box<str>, Box<str>>>,
    alive: AtomicBool,
    child: Mutex<Option<tokio::process::Child>>,
}

impl Conn {
    fn fail_all(&self, err: UpstreamError) {
        self.alive.store(false, Ordering::SeqCst);
        let pending: Vec<_> = self.pending.lock().drain().collect();
        for (_, tx) in pending {
            let _ = tx.try_send(Err(err.clone()));
        }
        self.progress.lock().clear();
    }
}

struct Supervisor {
    conn: Option<Arc<Conn>>,
    failures: u32,
    last_start: Option<Instant>,
}

/// A newline-delimited JSON-RPC upstream.
pub struct LineUpstream {
    connector: Arc<str>,
    index: usize,
    launch: Launch,
    inbox: Inbox,
    supervisor: tokio::sync::Mutex<Supervisor>,
    /// The client's `initialize` (replayed after a restart) and whether `initialized` followed.
    init: Mutex<Option<Bytes>>,
    initialized: AtomicBool,
}

#[derive(Deserialize)]
struct ProgressParams<'a> {
    #[serde(rename = "progressToken", borrow)]
    progress_token: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct MetaParams<'a> {
    #[serde(rename = "_meta", borrow)]
    meta: Option<ProgressParams<'a>>,
}

#[derive(Deserialize)]
struct WithParams<'a, T> {
    params: Option<T>,
    #[serde(skip)]
    _p: std::marker::PhantomData<&'a ()>,
}

fn request_progress_token(message: &[u8]) -> Option<Box<str>> {
    let m: WithParams<MetaParams> = serde_json::from_slice(message).ok()?;
    Some(m.params?.meta?.progress_token?.get().into())
}

fn notification_progress_token(message: &[u8]) -> Option<Box<str>> {
    let m: WithParams<ProgressParams> = serde_json::from_slice(message).ok()?;
    Some(m.params?.progress_token?.get().into())
}

impl LineUpstream {
    /// A line upstream for `connector` (index `index` in the session), started lazily.
    pub fn new(connector: &str, index: usize, launch: Launch, inbox: Inbox) -> Self {
        Self {
            connector: connector.into(),
            index,
            launch,
            inbox,
            supervisor: tokio::sync::Mutex::new(Supervisor {
                conn: None,
                failures: 0,
                last_start: None,
            }),
            init: Mutex::new(None),
            initialized: AtomicBool::new(false),
        }
    }

    fn unavailable(&self, detail: impl Into<String>) -> UpstreamError {
        UpstreamError::Unavailable {
            connector: self.connector.to_string(),
            detail: detail.into(),
        }
    }

    /// The running connection, starting (or restarting, with backoff and the replayed handshake)
    /// the server when needed.
    async fn conn(&self) -> Result<Arc<Conn>, UpstreamError> {
        let mut sup = self.supervisor.lock().await;
        if let Some(c) = &sup.conn
            && c.alive.load(Ordering::SeqCst)
        {
            return Ok(c.clone());
        }
        let restarting = sup.conn.is_some();
        if restarting {
            sup.failures = sup.failures.saturating_add(1);
            let backoff = FIRST_BACKOFF
                .saturating_mul(1 << sup.failures.saturating_sub(1).min(9))
                .min(MAX_BACKOFF);
            if let Some(last) = sup.last_start {
                let wait = backoff.saturating_sub(last.elapsed());
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
            }
            tracing::warn!(connector = %self.connector, restarts = sup.failures, "restarting connector process");
        }
        sup.last_start = Some(Instant::now());
        let conn = self.start()?;
        sup.conn = Some(conn.clone());
        drop(sup);
        if restarting {
            self.replay_handshake(&conn).await?;
        }
        Ok(conn)
    }

    async fn replay_handshake(&self, conn: &Arc<Conn>) -> Result<(), UpstreamError> {
        let init = self.init.lock().clone();
        let Some(init) = init else { return Ok(()) };
        // Same initialize, under a gateway id so it cannot collide with the client's ids.
        let mut v: serde_json::Value =
            serde_json::from_slice(&init).map_err(|e| self.unavailable(e.to_string()))?;
        v["id"] = serde_json::Value::String("portcullis:reinit".into());
        let msg = Bytes::from(serde_json::to_vec(&v).unwrap_or_default());
        let mut rx = self
            .send_request(conn, "\"portcullis:reinit\"", msg)
            .await?;
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return Err(e),
            _ => return Err(self.unavailable("the restarted process did not answer initialize")),
        }
        if self.initialized.load(Ordering::SeqCst) {
            let note =
                Bytes::from_static(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
            conn.writer
                .send(note)
                .await
                .map_err(|_| self.unavailable("the process closed its input"))?;
        }
        Ok(())
    }

    fn start(&self) -> Result<Arc<Conn>, UpstreamError> {
        let (reader, writer, child): (
            Box<dyn AsyncRead + Send + Unpin>,
            Box<dyn AsyncWrite + Send + Unpin>,
            _,
        ) = match &self.launch {
            Launch::Demo => {
                let stream = portcullis_demo::serve_in_process();
                let (r, w) = tokio::io::split(stream);
                (Box::new(r), Box::new(w), None)
            }
            Launch::Process {
                command,
                args,
                env,
                cwd,
            } => {
                let mut cmd = tokio::process::Command::new(command);
                cmd.args(args).env_clear();
                // Only what a program needs to run: the gateway's own secrets stay with it.
                for key in ["PATH", "HOME", "LANG", "TMPDIR"] {
                    if let Ok(v) = std::env::var(key) {
                        cmd.env(key, v);
                    }
                }
                cmd.envs(env);
                if let Some(dir) = cwd {
                    cmd.current_dir(dir);
                }
                cmd.stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .kill_on_drop(true);
                let mut child = cmd
                    .spawn()
                    .map_err(|e| self.unavailable(format!("cannot start `{command}`: {e}")))?;
                let stdin = child
                    .stdin
                    .take()
                    .ok_or_else(|| self.unavailable("no stdin"))?;
                let stdout = child
                    .stdout
                    .take()
                    .ok_or_else(|| self.unavailable("no stdout"))?;
                if let Some(stderr) = child.stderr.take() {
                    let name = self.connector.clone();
                    tokio::spawn(async move {
                        let mut lines = BufReader::new(stderr).lines();
                        while let Ok(Some(line)) = lines.next_line().await {
                            let line: String = line.chars().take(2000).collect();
                            tracing::info!(target: "portcullis::connector", connector = %name, "stderr: {line}");
                        }
                    });
                }
                (Box::new(stdout), Box::new(stdin), Some(child))
            }
        };
        let (wtx, mut wrx) = mpsc::channel::<Bytes>(256);
        let conn = Arc::new(Conn {
            writer: wtx,
            pending: Mutex::new(HashMap::new()),
            progress: Mutex::new(HashMap::new()),
            alive: AtomicBool::new(true),
            child: Mutex::new(child),
        });
        let name = self.connector.clone();
        let wconn = Arc::downgrade(&conn);
        tokio::spawn(async move {
            let mut writer = writer;
            while let Some(msg) = wrx.recv().await {
                let ok = writer.write_all(&msg).await.is_ok()
                    && writer.write_all(b"\n").await.is_ok()
                    && writer.flush().await.is_ok();
                if !ok {
                    if let Some(c) = wconn.upgrade() {
                        c.fail_all(UpstreamError::Unavailable {
                            connector: name.to_string(),
                            detail: "the process closed its input".into(),
                        });
                    }
                    break;
                }
            }
        });
        let rconn = conn.clone();
        let name = self.connector.clone();
        let inbox = self.inbox.clone();
        let index = self.index;
        tokio::spawn(async move {
            let detail = read_loop(reader, &rconn, &name, index, &inbox).await;
            let status = match rconn.child.lock().as_mut().map(|c| c.try_wait()) {
                Some(Ok(Some(s))) => format!(" ({s})"),
                _ => String::new(),
            };
            tracing::warn!(connector = %name, "connector transport ended: {detail}{status}");
            rconn.fail_all(UpstreamError::Unavailable {
                connector: name.to_string(),
                detail: format!("{detail}{status}"),
            });
        });
        Ok(conn)
    }

    async fn send_request(
        &self,
        conn: &Arc<Conn>,
        id: &str,
        message: Bytes,
    ) -> Result<Exchange, UpstreamError> {
        let (tx, rx) = mpsc::channel(64);
        conn.pending.lock().insert(id.into(), tx);
        if let Some(token) = request_progress_token(&message) {
            conn.progress.lock().insert(token, id.into());
        }
        if conn.writer.send(message).await.is_err() {
            conn.pending.lock().remove(id);
            return Err(self.unavailable("the process closed its input"));
        }
        Ok(rx)
    }
}

async fn read_loop(
    reader: Box<dyn AsyncRead + Send + Unpin>,
    conn: &Conn,
    name: &str,
    index: usize,
    inbox: &Inbox,
) -> String {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let mut buf = Vec::with_capacity(8192);
    loop {
        buf.clear();
        // Bounded read: a connector that never ends a line cannot exhaust memory.
        let n = match (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .await
        {
            Ok(0) => return "the process exited".into(),
            Ok(n) => n,
            Err(e) => return format!("read error: {e}"),
        };
        if n > MAX_LINE_BYTES {
            return format!("a message over {MAX_LINE_BYTES} bytes");
        }
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        if buf.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let Some(head) = upstream_head(&buf) else {
            // Servers sometimes print banners on stdout; they are not MCP, so they are logged, not relayed.
            let text: String = String::from_utf8_lossy(&buf).chars().take(200).collect();
            tracing::warn!(connector = %name, "ignored a line that is not JSON-RPC: {text}");
            continue;
        };
        let line = Bytes::copy_from_slice(&buf);
        match head.kind {
            Kind::Response => {
                let Some(id) = head.id.clone() else { continue };
                let tx = conn.pending.lock().remove(id.json());
                match tx {
                    Some(tx) => {
                        conn.progress.lock().retain(|_, v| **v != *id.json());
                        let _ = tx.send(Ok(UpMsg::new(line, head))).await;
                    }
                    None => {
                        tracing::debug!(connector = %name, "response to an unknown or timed-out request")
                    }
                }
            }
            Kind::Notification if head.method.as_deref() == Some("notifications/progress") => {
                let target = notification_progress_token(&line)
                    .and_then(|t| conn.progress.lock().get(&t).cloned())
                    .and_then(|id| conn.pending.lock().get(&id).cloned());
                match target {
                    Some(tx) => {
                        let _ = tx.send(Ok(UpMsg::new(line, head))).await;
                    }
                    None => {
                        let _ = inbox.try_send((index, line));
                    }
                }
            }
            _ => {
                if inbox.try_send((index, line)).is_err() {
                    tracing::warn!(connector = %name, "session inbox full or closed: a server message was dropped");
                }
            }
        }
    }
}

impl Upstream for LineUpstream {
    fn request<'a>(
        &'a self,
        id: &'a str,
        message: Bytes,
        ctx: &'a RequestCtx,
    ) -> BoxFuture<'a, Result<Exchange, UpstreamError>> {
        Box::pin(async move {
            if ctx.initialize && self.init.lock().is_none() {
                *self.init.lock() = Some(message.clone());
            }
            let conn = self.conn().await?;
            self.send_request(&conn, id, message).await
        })
    }

    fn send<'a>(
        &'a self,
        message: Bytes,
        _ctx: &'a RequestCtx,
    ) -> BoxFuture<'a, Result<(), UpstreamError>> {
        Box::pin(async move {
            if message
                .windows(25)
                .any(|w| w == b"notifications/initialized")
            {
                self.initialized.store(true, Ordering::SeqCst);
            }
            let conn = self.conn().await?;
            conn.writer
                .send(message)
                .await
                .map_err(|_| self.unavailable("the process closed its input"))
        })
    }

    fn forget(&self, id: &str) {
        if let Ok(sup) = self.supervisor.try_lock()
            && let Some(conn) = &sup.conn
        {
            conn.pending.lock().remove(id);
            conn.progress.lock().retain(|_, v| &**v != id);
        }
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let conn = self.supervisor.lock().await.conn.take();
            if let Some(conn) = conn {
                conn.alive.store(false, Ordering::SeqCst);
                let child = conn.child.lock().take();
                if let Some(mut child) = child {
                    let _ = child.start_kill();
                    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                }
            }
        })
    }
}
