//! TLS termination for `portcullis serve` (AUTH transport rules, EG-2): rustls with the aws-lc
//! provider, TLS 1.2 or newer only, ALPN h2 and http/1.1, served by hyper-util's auto builder.
//! The certificate and key are PEM files, re-read when either changes (polled every few
//! seconds), so a renewed certificate is used by new connections without a restart; a broken
//! new file is logged and the old certificate kept. Shutdown stops accepting and drains the
//! connections in flight (OPS-3).

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use portcullis_config::{Tls, TlsVersion};
use portcullis_gateway::ConnectionInfo;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// How often the certificate files are checked for changes.
const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take to send a request head on an HTTP/1.1 connection.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a certificate or key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file could not be read or held no usable PEM.
    #[error("{what} {path}: {detail}")]
    File {
        /// "certificate file" or "key file".
        what: &'static str,
        /// The file.
        path: String,
        /// What was wrong and what to do.
        detail: String,
    },
    /// The key does not fit the certificate, or rustls cannot use it.
    #[error("the key in {key} cannot be used with the certificate in {cert}: {detail}")]
    Mismatch {
        /// Certificate file.
        cert: String,
        /// Key file.
        key: String,
        /// What rustls said.
        detail: String,
    },
}

type Stamp = Option<(Option<SystemTime>, u64)>;

fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.modified().ok(), m.len()))
}

/// The server certificate, swapped when its files change. New handshakes get the current one;
/// connections already open keep theirs.
#[derive(Debug)]
pub struct ReloadingCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    stamps: Mutex<(Stamp, Stamp)>,
}

impl ReloadingCert {
    /// Loads the certificate chain and key; any problem is an error (start-up fails).
    pub fn load(
        cert_file: &Path,
        key_file: &Path,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, CertError> {
        let stamps = (stamp(cert_file), stamp(key_file));
        let key = load_certified_key(cert_file, key_file, &provider)?;
        Ok(Self {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            provider,
            current: RwLock::new(Arc::new(key)),
            stamps: Mutex::new(stamps),
        })
    }

    /// The certificate new handshakes get.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reloads when either file changed since the last look: `Ok(true)` when a new certificate
    /// is in use, `Ok(false)` when nothing changed. A broken new file is an error and the old
    /// certificate stays; it is tried again only once the files change again (no log flood
    /// while a renewal is half written).
    pub fn reload_if_changed(&self) -> Result<bool, CertError> {
        let now = (stamp(&self.cert_file), stamp(&self.key_file));
        {
            let mut seen = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
            if *seen == now {
                return Ok(false);
            }
            *seen = now;
        }
        let key = load_certified_key(&self.cert_file, &self.key_file, &self.provider)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(key);
        Ok(true)
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn load_certified_key(
    cert_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, CertError> {
    let file_err = |what: &'static str, path: &Path, detail: String| CertError::File {
        what,
        path: path.display().to_string(),
        detail,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| {
            file_err(
                "certificate file",
                cert_file,
                format!("cannot read it: {e}"),
            )
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err("certificate file", cert_file, format!("not valid PEM: {e}")))?;
    if chain.is_empty() {
        return Err(file_err(
            "certificate file",
            cert_file,
            "holds no CERTIFICATE block; give the PEM chain, leaf first".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
        file_err(
            "key file",
            key_file,
            format!("holds no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}"),
        )
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| CertError::Mismatch {
        cert: cert_file.display().to_string(),
        key: key_file.display().to_string(),
        detail: e.to_string(),
    })
}

/// A TLS listener's configuration: the rustls server config and its reloading certificate.
pub struct TlsServer {
    config: Arc<rustls::ServerConfig>,
    cert: Arc<ReloadingCert>,
}

impl TlsServer {
    /// Loads the certificate and key of `tls`; fails when they cannot be used.
    pub fn load(tls: &Tls) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let cert = Arc::new(ReloadingCert::load(
            &tls.cert_file,
            &tls.key_file,
            provider.clone(),
        )?);
        let versions: &[&'static rustls::SupportedProtocolVersion] = match tls.min_version {
            TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .context("the TLS provider does not support the configured versions")?
            .with_no_client_auth()
            .with_cert_resolver(cert.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            config: Arc::new(config),
            cert,
        })
    }

    /// The certificate in use, to check or reload it (tests trigger the reload check directly).
    #[cfg(test)]
    pub fn cert(&self) -> &Arc<ReloadingCert> {
        &self.cert
    }

    /// Serves `router` over TLS on `listener` until `shutdown` completes, then stops accepting
    /// and waits for the connections in flight to finish (OPS-3). Each request carries a
    /// [`ConnectionInfo`] (peer, `tls: true`) and axum's `ConnectInfo<SocketAddr>`.
    pub async fn serve(
        self,
        listener: TcpListener,
        router: Router,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.config.clone());
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        // A client that opens a connection and never finishes its request head must not hold
        // it open forever (slowloris).
        builder
            .http1()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let reloader = {
            let cert = Arc::downgrade(&self.cert);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(RELOAD_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(cert) = cert.upgrade() else { return };
                    match cert.reload_if_changed() {
                        Ok(true) => tracing::info!("TLS certificate reloaded"),
                        Ok(false) => {}
                        Err(e) => tracing::warn!(
                            "the new TLS certificate cannot be used, keeping the old one: {e}"
                        ),
                    }
                }
            })
        };
        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: pause briefly, keep serving.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            // Small JSON-RPC answers must not wait for Nagle's algorithm.
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let builder = builder.clone();
            let router = router.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let stream =
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        // Plain HTTP to the TLS port, old TLS versions, bad clients: not ours to
                        // log at warn level, the client sees the failure.
                        Ok(Err(e)) => {
                            tracing::debug!("TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            return;
                        }
                    };
                let info = ConnectionInfo { peer, tls: true };
                let service = hyper::service::service_fn(
                    move |mut req: http::Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(info);
                        req.extensions_mut()
                            .insert(axum::extract::ConnectInfo::<SocketAddr>(peer));
                        router.clone().oneshot(req.map(axum::body::Body::new))
                    },
                );
                let conn = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                if let Err(e) = watcher.watch(conn).await {
                    tracing::debug!("connection ended with an error: {e}");
                }
            });
        }
        drop(listener);
        reloader.abort();
        graceful.shutdown().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    struct Pki {
        dir: tempfile::TempDir,
        ca_pem: String,
    }

    /// A CA and a leaf for `localhost` / 127.0.0.1 signed by it, written to cert.pem and
    /// key.pem; returns the leaf's DER.
    fn issue(pki: &Pki, ca: &rcgen::CertifiedIssuer<'_, rcgen::KeyPair>, cn: &str) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let cert = params.signed_by(&key, ca).unwrap();
        std::fs::write(pki.dir.path().join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(pki.dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        cert.der().to_vec()
    }

    fn ca() -> (Pki, rcgen::CertifiedIssuer<'static, rcgen::KeyPair>) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Portcullis test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
            .unwrap();
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
            ca_pem: ca.pem(),
        };
        (pki, ca)
    }

    fn tls_config(pki: &Pki, min: TlsVersion) -> Tls {
        Tls {
            cert_file: pki.dir.path().join("cert.pem"),
            key_file: pki.dir.path().join("key.pem"),
            min_version: min,
        }
    }

    struct Running {
        addr: SocketAddr,
        cert: Arc<ReloadingCert>,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        done: tokio::task::JoinHandle<anyhow::Result<()>>,
    }

    async fn start(tls: &Tls, router: Router) -> Running {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let server = TlsServer::load(tls).unwrap();
        let cert = server.cert().clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(server.serve(listener, router, async move {
            let _ = stopped.await;
        }));
        Running {
            addr,
            cert,
            stop: Some(stop),
            done,
        }
    }

    fn hello_router() -> Router {
        Router::new().route(
            "/",
            axum::routing::get(
                |axum::Extension(c): axum::Extension<ConnectionInfo>| async move {
                    format!("tls={}", c.tls)
                },
            ),
        )
    }

    fn client(pki: &Pki, max: Option<reqwest::tls::Version>) -> reqwest::Client {
        let mut b = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap()])
            .tls_info(true);
        if let Some(m) = max {
            b = b.max_tls_version(m);
        }
        b.build().unwrap()
    }

    fn peer_cert(resp: &reqwest::Response) -> Vec<u8> {
        resp.extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|t| t.peer_certificate())
            .unwrap()
            .to_vec()
    }

    #[tokio::test]
    async fn tls_12_and_13_handshakes_work_with_the_configured_certificate() {
        let (pki, ca) = ca();
        let leaf = issue(&pki, &ca, "one");
        let s = start(&tls_config(&pki, TlsVersion::Tls12), hello_router()).await;
        let url = format!("https://localhost:{}/", s.addr.port());
        for max in [None, Some(reqwest::tls::Version::TLS_1_2)] {
            let resp = client(&pki, max).get(&url).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(peer_cert(&resp), leaf);
            assert_eq!(resp.text().await.unwrap(), "tls=true");
        }
    }

    #[tokio::test]
    async fn alpn_negotiates_h2_and_http_11() {
        let (pki, ca) = ca();
        issue(&pki, &ca, "one");
        let s = start(&tls_config(&pki, TlsVersion::Tls12), hello_router()).await;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
            .unwrap();
        for proto in [&b"h2"[..], &b"http/1.1"[..]] {
            let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
            cfg.alpn_protocols = vec![proto.to_vec()];
            let tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
            let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
                .connect(
                    rustls::pki_types::ServerName::try_from("localhost").unwrap(),
                    tcp,
                )
                .await
                .unwrap();
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(proto));
        }
    }

    #[tokio::test]
    async fn min_version_13_refuses_a_tls_12_client() {
        let (pki, ca) = ca();
        issue(&pki, &ca, "one");
        let s = start(&tls_config(&pki, TlsVersion::Tls13), hello_router()).await;
        let url = format!("https://localhost:{}/", s.addr.port());
        let e = client(&pki, Some(reqwest::tls::Version::TLS_1_2))
            .get(&url)
            .send()
            .await;
        assert!(e.is_err(), "a TLS 1.2 client must be refused");
        assert!(client(&pki, None).get(&url).send().await.is_ok());
    }

    /// A TLS 1.1 ClientHello (no supported_versions extension) gets an alert, never a
    /// ServerHello.
    #[tokio::test]
    async fn tls_11_and_plain_http_are_refused() {
        let (pki, ca) = ca();
        issue(&pki, &ca, "one");
        let s = start(&tls_config(&pki, TlsVersion::Tls12), hello_router()).await;
        let addr = s.addr;
        let reply = tokio::task::spawn_blocking(move || {
            let mut hello = vec![0x03, 0x02]; // client_version TLS 1.1
            hello.extend_from_slice(&[7u8; 32]); // random
            hello.push(0); // no session id
            hello.extend_from_slice(&[0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // two TLS 1.1 suites
            hello.extend_from_slice(&[0x01, 0x00]); // null compression
            let mut hs = vec![0x01, 0x00, (hello.len() >> 8) as u8, hello.len() as u8];
            hs.extend_from_slice(&hello);
            let mut record = vec![0x16, 0x03, 0x02, (hs.len() >> 8) as u8, hs.len() as u8];
            record.extend_from_slice(&hs);
            let mut tcp = std::net::TcpStream::connect(addr).unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            tcp.write_all(&record).unwrap();
            let mut buf = Vec::new();
            let _ = tcp.read_to_end(&mut buf);
            buf
        })
        .await
        .unwrap();
        assert!(!reply.is_empty(), "an alert is expected");
        assert_eq!(
            reply[0], 0x15,
            "a TLS alert record, not a handshake: {reply:02x?}"
        );

        let plain = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}/", addr.port()))
            .send()
            .await;
        assert!(plain.is_err(), "plain HTTP to the TLS port must fail");
    }

    #[tokio::test]
    async fn new_certificate_files_are_used_by_new_connections() {
        let (pki, ca) = ca();
        let first = issue(&pki, &ca, "first");
        let s = start(&tls_config(&pki, TlsVersion::Tls12), hello_router()).await;
        let url = format!("https://localhost:{}/", s.addr.port());
        assert_eq!(
            peer_cert(&client(&pki, None).get(&url).send().await.unwrap()),
            first
        );
        assert!(!s.cert.reload_if_changed().unwrap(), "nothing changed yet");

        let second = issue(&pki, &ca, "second-certificate");
        assert!(s.cert.reload_if_changed().unwrap());
        // A new client: a new connection and handshake.
        assert_eq!(
            peer_cert(&client(&pki, None).get(&url).send().await.unwrap()),
            second
        );

        // A broken renewal is refused and the current certificate stays.
        std::fs::write(
            pki.dir.path().join("cert.pem"),
            "-----BEGIN CERTIFICATE-----\ngarbage\n",
        )
        .unwrap();
        let e = s.cert.reload_if_changed().unwrap_err();
        assert!(e.to_string().contains("cert.pem"), "{e}");
        assert_eq!(
            peer_cert(&client(&pki, None).get(&url).send().await.unwrap()),
            second
        );
        // A key that does not fit the certificate is refused too.
        let other = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        std::fs::write(
            pki.dir.path().join("cert.pem"),
            params.signed_by(&other, &ca).unwrap().pem(),
        )
        .unwrap();
        assert!(matches!(
            s.cert.reload_if_changed(),
            Err(CertError::Mismatch { .. })
        ));
        assert_eq!(
            peer_cert(&client(&pki, None).get(&url).send().await.unwrap()),
            second
        );
    }

    #[tokio::test]
    async fn shutdown_drains_calls_in_flight() {
        let (pki, ca) = ca();
        issue(&pki, &ca, "one");
        let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        let gates = Arc::new(Mutex::new((Some(entered_tx), Some(release_rx))));
        let router = Router::new().route(
            "/slow",
            axum::routing::get(move || {
                let gates = gates.clone();
                async move {
                    let (entered, release) = {
                        let mut g = gates.lock().unwrap();
                        (g.0.take().unwrap(), g.1.take().unwrap())
                    };
                    let _ = entered.send(());
                    let _ = release.await;
                    "finished"
                }
            }),
        );
        let mut s = start(&tls_config(&pki, TlsVersion::Tls12), router).await;
        let url = format!("https://localhost:{}/slow", s.addr.port());
        let c = client(&pki, None);
        let call =
            tokio::spawn(async move { c.get(&url).send().await.unwrap().text().await.unwrap() });
        entered_rx.await.unwrap();
        s.stop.take().unwrap().send(()).unwrap();
        // The server stops accepting but waits for the call in flight.
        assert!(!s.done.is_finished());
        release_tx.send(()).unwrap();
        assert_eq!(call.await.unwrap(), "finished");
        tokio::time::timeout(Duration::from_secs(30), s.done)
            .await
            .expect("the server ends once drained")
            .unwrap()
            .unwrap();
    }

    #[test]
    fn unusable_files_fail_at_start_with_their_names() {
        let dir = tempfile::tempdir().unwrap();
        let tls = Tls {
            cert_file: dir.path().join("missing.pem"),
            key_file: dir.path().join("key.pem"),
            min_version: TlsVersion::Tls12,
        };
        let e = TlsServer::load(&tls).err().unwrap().to_string();
        assert!(e.contains("missing.pem"), "{e}");
    }
}
