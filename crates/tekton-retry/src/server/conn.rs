//! Connections on the secure port, bounded the way k8s.io/apiserver's secure serving bounds them
//! (`staging/src/k8s.io/apiserver/pkg/server/secure_serving.go` `Serve`/`RunServer`: HTTP/2 with
//! 100 streams per connection, 1 MiB of headers, a 90 s idle timeout, a 32 s header timeout,
//! TCP keep-alive), plus bounds Go gets from its runtime or that an attacker would otherwise
//! exploit here:
//!
//! * the protocol is the one negotiated by ALPN (`h2`, else HTTP/1.1) — nothing is read to guess it;
//! * a connection must start a request within the first-request timeout and is closed after the
//!   idle timeout without one;
//! * at most `max_connections` are open (more wait in the listen backlog, like Go's
//!   `netutil.LimitListener`);
//! * bytes of request heads not yet complete share one budget for the whole server: past it, a
//!   connection already holding more than [`HEAD_BYTES_FREE`] of an unfinished head is not read
//!   until the budget frees up (a hundred clients trickling 1 MiB heads cannot hold 100 MiB);
//! * an HTTP/2 connection that carried an unauthenticated request is closed (GOAWAY) once its
//!   streams are answered, as `filters.WithAuthentication` does with
//!   `UnauthenticatedHTTP2DOSMitigation`.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};

use super::handler::{self, ConnInfo, Shared};
use super::tls::TlsState;

/// Most header lines an HTTP/1 request may have: room for a user in 1,250 groups (the front
/// proxy sends one `X-Remote-Group` line per group) besides the usual headers.
///
/// hyper allocates and fills 64 bytes per allowed line for every request head it parses, however
/// few lines the request has: at 8,192 that was 512 KiB per request and capped discovery at
/// ~9,500 requests/s on one core. HTTP/2 has no count limit (bytes only).
pub const MAX_HTTP1_HEADERS: usize = 1280;

/// Bytes of request headers per request, HTTP/1 and HTTP/2 alike (Go's
/// `http.DefaultMaxHeaderBytes`, which kube-apiserver keeps).
pub const MAX_HEADER_BYTES: usize = 1 << 20;

/// Streams an HTTP/2 client may open at once on one connection (`secure_serving.go`
/// `MaxConcurrentStreams` default).
pub const HTTP2_MAX_STREAMS: u32 = 100;

/// An unfinished request head smaller than this is always read, whatever the shared budget says:
/// ordinary clients are never slowed down by clients trickling huge heads.
pub const HEAD_BYTES_FREE: usize = 64 * 1024;

/// Limits and timeouts of the connections.
#[derive(Clone, Debug)]
pub struct ConnLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// From accept to the end of the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// From the end of the handshake to the first request (its head complete).
    pub first_request_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// An HTTP/1 request head must arrive within this (after the first request).
    pub header_read_timeout: Duration,
    /// TCP keep-alive probes start after this much silence.
    pub tcp_keepalive: Duration,
    /// Bytes of unfinished request heads held for all connections together.
    pub head_bytes_budget: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 4096,
            tls_handshake_timeout: Duration::from_secs(10),
            first_request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
            header_read_timeout: Duration::from_secs(32),
            tcp_keepalive: Duration::from_secs(180),
            head_bytes_budget: 16 << 20,
        }
    }
}

fn builders(limits: &ConnLimits) -> (auto::Builder<TokioExecutor>, auto::Builder<TokioExecutor>) {
    let mut h1 = auto::Builder::new(TokioExecutor::new()).http1_only();
    h1.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // The front proxy sends one `X-Remote-Group` line per group; a user in a thousand groups
        // must not be a 431. Go's net/http limits header bytes only, so the count is limited
        // generously and `max_buf_size` bounds the bytes. Checked by `tests/hardening_auth.rs`.
        .max_headers(MAX_HTTP1_HEADERS)
        .max_buf_size(MAX_HEADER_BYTES);
    let mut h2 = auto::Builder::new(TokioExecutor::new()).http2_only();
    h2.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_concurrent_streams(HTTP2_MAX_STREAMS)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    (h1, h2)
}

/// Bytes of unfinished request heads, for all connections.
#[derive(Default)]
struct HeadBudget {
    used: AtomicUsize,
    max: usize,
}

/// What the watchdog of one connection reads.
struct ConnState {
    /// Requests being answered now.
    in_flight: AtomicUsize,
    /// Whether a request ever started on the connection.
    served: AtomicBool,
    /// Milliseconds since `born` when the last request ended.
    last_end_ms: AtomicU64,
    born: Instant,
    /// Bytes read since the last request started while no request was in flight (its head).
    head_bytes: AtomicUsize,
    budget: Arc<HeadBudget>,
    /// Close once the requests in flight are answered (HTTP/2 after an unauthenticated request).
    close: Notify,
    close_requested: AtomicBool,
}

impl ConnState {
    fn new(budget: Arc<HeadBudget>) -> Self {
        ConnState {
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            last_end_ms: AtomicU64::new(0),
            born: Instant::now(),
            head_bytes: AtomicUsize::new(0),
            budget,
            close: Notify::new(),
            close_requested: AtomicBool::new(false),
        }
    }

    fn release_head(&self) {
        let n = self.head_bytes.swap(0, Ordering::SeqCst);
        self.budget.used.fetch_sub(n, Ordering::SeqCst);
    }

    fn begin(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.served.store(true, Ordering::SeqCst);
        self.release_head();
        RequestGuard(self.clone())
    }

    /// Whether the connection has been without a request for longer than allowed.
    fn idle_too_long(&self, limits: &ConnLimits) -> bool {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return false;
        }
        let now_ms = self.born.elapsed().as_millis() as u64;
        if self.served.load(Ordering::SeqCst) {
            let idle = now_ms.saturating_sub(self.last_end_ms.load(Ordering::SeqCst));
            idle >= limits.idle_timeout.as_millis() as u64
        } else {
            now_ms >= limits.first_request_timeout.as_millis() as u64
        }
    }
}

impl Drop for ConnState {
    fn drop(&mut self) {
        let n = self.head_bytes.swap(0, Ordering::SeqCst);
        self.budget.used.fetch_sub(n, Ordering::SeqCst);
    }
}

struct RequestGuard(Arc<ConnState>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let s = &self.0;
        s.last_end_ms
            .store(s.born.elapsed().as_millis() as u64, Ordering::SeqCst);
        s.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The TLS stream, counting the bytes of request heads against the shared budget.
struct CountedIo<T> {
    inner: T,
    state: Arc<ConnState>,
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T: AsyncRead + Unpin> AsyncRead for CountedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let counting = this.state.in_flight.load(Ordering::SeqCst) == 0;
        if counting
            && this.state.head_bytes.load(Ordering::SeqCst) > HEAD_BYTES_FREE
            && this.state.budget.used.load(Ordering::SeqCst) > this.state.budget.max
        {
            // Over budget: try again a little later (the first-request or header timeout ends a
            // connection that stays stuck here).
            let sleep = this
                .stall
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::from_millis(100))));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.stall = None;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if counting {
            if let Poll::Ready(Ok(())) = &res {
                let n = buf.filled().len() - before;
                this.state.head_bytes.fetch_add(n, Ordering::SeqCst);
                this.state.budget.used.fetch_add(n, Ordering::SeqCst);
            }
        }
        res
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CountedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Accepts connections until `stop` turns true, then closes the listener, asks every connection
/// to finish (GOAWAY / close when idle) and waits for them.
pub async fn accept_loop(
    listener: TcpListener,
    tls_state: Arc<TlsState>,
    shared: Arc<Shared>,
    limits: ConnLimits,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (h1, h2) = builders(&limits);
    let (h1, h2) = (Arc::new(h1), Arc::new(h2));
    let budget = Arc::new(HeadBudget {
        used: AtomicUsize::new(0),
        max: limits.head_bytes_budget,
    });
    let limits = Arc::new(limits);
    loop {
        let slot = tokio::select! {
            _ = stop.changed() => break,
            s = slots.clone().acquire_owned() => s,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let conn = Connection {
            tls_state: tls_state.clone(),
            shared: shared.clone(),
            limits: limits.clone(),
            builders: (h1.clone(), h2.clone()),
            budget: budget.clone(),
            stop: stop.clone(),
            _slot: slot,
        };
        tokio::spawn(conn.serve(tcp, peer));
    }
    drop(listener);
    // Every connection gives its slot back when it ends.
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

struct Connection {
    tls_state: Arc<TlsState>,
    shared: Arc<Shared>,
    limits: Arc<ConnLimits>,
    builders: (
        Arc<auto::Builder<TokioExecutor>>,
        Arc<auto::Builder<TokioExecutor>>,
    ),
    budget: Arc<HeadBudget>,
    stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
}

fn tcp_setup(tcp: &TcpStream, keepalive: Duration) {
    let _ = tcp.set_nodelay(true);
    let ka = socket2::TcpKeepalive::new()
        .with_time(keepalive)
        .with_interval(Duration::from_secs(15));
    if let Err(e) = socket2::SockRef::from(tcp).set_tcp_keepalive(&ka) {
        tracing::debug!(error = %e, "cannot set TCP keep-alive");
    }
}

impl Connection {
    async fn serve(mut self, tcp: TcpStream, peer: SocketAddr) {
        tcp_setup(&tcp, self.limits.tcp_keepalive);
        let acceptor = tokio_rustls::TlsAcceptor::from(self.tls_state.config());
        let tls =
            match tokio::time::timeout(self.limits.tls_handshake_timeout, acceptor.accept(tcp))
                .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
        let session = tls.get_ref().1;
        let http2 = session.alpn_protocol() == Some(b"h2");
        let info = Arc::new(ConnInfo {
            peer_certs: session
                .peer_certificates()
                .map(|c| c.to_vec())
                .unwrap_or_default(),
            http2,
        });
        let state = Arc::new(ConnState::new(self.budget.clone()));
        let io = CountedIo {
            inner: tls,
            state: state.clone(),
            stall: None,
        };
        let shared = self.shared.clone();
        let svc_state = state.clone();
        let service = hyper::service::service_fn(move |req| {
            let shared = shared.clone();
            let info = info.clone();
            let guard = svc_state.begin();
            async move {
                let resp = handler::handle(shared, info.clone(), req).await;
                if info.http2 && resp.status() == http::StatusCode::UNAUTHORIZED {
                    guard.0.close_requested.store(true, Ordering::SeqCst);
                    guard.0.close.notify_one();
                }
                drop(guard);
                Ok::<_, Infallible>(resp)
            }
        });
        let builder = if http2 {
            &self.builders.1
        } else {
            &self.builders.0
        };
        let conn = builder.serve_connection(TokioIo::new(io), service);
        let mut conn = std::pin::pin!(conn);
        let tick = (self
            .limits
            .first_request_timeout
            .min(self.limits.idle_timeout)
            / 4)
        .clamp(Duration::from_millis(10), Duration::from_secs(1));
        let mut closing: Option<tokio::time::Instant> = None;
        let why: OnceLock<&'static str> = OnceLock::new();
        loop {
            let close_grace = self.shared.request_timeout + Duration::from_secs(5);
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    break;
                }
                _ = self.stop.changed(), if closing.is_none() => {
                    let _ = why.set("server shutting down");
                    conn.as_mut().graceful_shutdown();
                    closing = Some(tokio::time::Instant::now() + close_grace);
                }
                _ = state.close.notified(), if closing.is_none() => {
                    let _ = why.set("unauthenticated HTTP/2 request");
                    conn.as_mut().graceful_shutdown();
                    closing = Some(tokio::time::Instant::now() + close_grace);
                }
                _ = tokio::time::sleep(tick) => {
                    if let Some(deadline) = closing {
                        if tokio::time::Instant::now() >= deadline {
                            break;
                        }
                    } else if state.idle_too_long(&self.limits) {
                        let _ = why.set("idle");
                        conn.as_mut().graceful_shutdown();
                        // An idle connection has nothing to finish: give it a moment to send
                        // its GOAWAY or close notice.
                        closing = Some(tokio::time::Instant::now() + Duration::from_secs(1));
                    }
                }
            }
        }
        if let Some(reason) = why.get() {
            tracing::debug!(%peer, reason, "connection closed by the server");
        }
    }
}
