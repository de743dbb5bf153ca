//! A cutout server on 127.0.0.1 that serves JPEGs and injects faults, for tests (cargo feature
//! `test-server`; not for production use).
//!
//! Each request is answered by a [`Reply`] that the test's plan picks from the [`Request`] (its query and
//! how many times that exact URL was asked for before), so a test can say "the galaxy at ra=3 gets a 500
//! twice, then an image". Every request is logged with its arrival time. The server binds port 0 on
//! loopback only, and answers every connection on its own thread with `Connection: close`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The path, without the query.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// Query parameters (not percent-decoded; the client sends plain numbers).
    pub params: HashMap<String, String>,
    /// How many times this exact path and query has been requested, this one included (1-based).
    pub attempt: u32,
    /// When the request line arrived.
    pub at: Instant,
}

impl Request {
    /// A query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// The `width` and `height` parameters (0 if missing or not numbers).
    pub fn size(&self) -> (u32, u32) {
        let get = |n| self.param(n).and_then(|v| v.parse().ok()).unwrap_or(0);
        (get("width"), get("height"))
    }
}

/// How to answer a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A valid JPEG of the requested width and height.
    Jpeg,
    /// A valid JPEG of another size.
    JpegOfSize(u32, u32),
    /// This status with a short HTML body (e.g. 404, 500, 503).
    Status(u16),
    /// 429 Too Many Requests with this Retry-After value.
    TooManyRequests(String),
    /// An HTML error page with status 200.
    Html200,
    /// Status 200 with an empty body.
    Empty200,
    /// Content-Length of the whole JPEG, but only half of it is sent before the connection closes.
    Truncated,
    /// A chunked JPEG whose connection closes after the first chunk (no terminating chunk).
    DropChunked,
    /// No Content-Length (`Connection: close` delimits the body) and the connection closes halfway.
    DropClose,
    /// Wait this long, then send a valid JPEG.
    Slow(Duration),
    /// Send the headers and part of the body, then stall this long before closing.
    Stall(Duration),
    /// Accept the connection but send nothing for this long, then close.
    Silent(Duration),
}

type Plan = dyn Fn(&Request) -> Reply + Send + Sync;

/// The running server; stops accepting when dropped.
pub struct CutoutServer {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    /// Requests waiting for their answer to start now, and the most at once.
    load: Arc<(AtomicUsize, AtomicUsize)>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl CutoutServer {
    /// Starts a server on 127.0.0.1 (a free port) that answers each request with `plan(request)`.
    ///
    /// # Panics
    /// If no loopback port can be bound (test code).
    pub fn start(plan: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> CutoutServer {
        // Test support only: a test without a loopback port cannot run, so failing loudly is right.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let plan: Arc<Plan> = Arc::new(plan);
        let load = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let accept = {
            let (log, stop, load) = (Arc::clone(&log), Arc::clone(&stop), Arc::clone(&load));
            std::thread::spawn(move || {
                let counts = Arc::new(Mutex::new(HashMap::<String, u32>::new()));
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (log, plan, counts, load) = (
                        Arc::clone(&log),
                        Arc::clone(&plan),
                        Arc::clone(&counts),
                        Arc::clone(&load),
                    );
                    std::thread::spawn(move || {
                        // A client that gives up early makes writes fail; that is part of the test.
                        let _ = serve(stream, &*plan, &log, &counts, &load);
                    });
                }
            })
        };
        CutoutServer {
            addr,
            log,
            stop,
            load,
            accept: Some(accept),
        }
    }

    /// The cutout endpoint, e.g. `http://127.0.0.1:40123/getjpeg`.
    pub fn base_url(&self) -> String {
        format!("http://{}/getjpeg", self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The most requests that were waiting for their answer at once (from the end of the request to the
    /// first byte of the answer, so a client's next request cannot overlap its previous one here).
    pub fn max_concurrent(&self) -> usize {
        self.load.1.load(Ordering::SeqCst)
    }

    /// The requests whose `name` parameter equals `value`.
    pub fn requests_with(&self, name: &str, value: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.param(name) == Some(value))
            .collect()
    }
}

impl Drop for CutoutServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn serve(
    stream: TcpStream,
    plan: &Plan,
    log: &Mutex<Vec<Request>>,
    counts: &Mutex<HashMap<String, u32>>,
    load: &(AtomicUsize, AtomicUsize),
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let at = Instant::now();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
    }
    let target = first.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let params = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let attempt = {
        let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = c.entry(target.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let request = Request {
        path: path.to_owned(),
        query: query.to_owned(),
        params,
        attempt,
        at,
    };
    if let Ok(mut l) = log.lock() {
        l.push(request.clone());
    }
    let now = load.0.fetch_add(1, Ordering::SeqCst) + 1;
    load.1.fetch_max(now, Ordering::SeqCst);
    let answering = || {
        load.0.fetch_sub(1, Ordering::SeqCst);
    };
    let reply = plan(&request);
    let (w, h) = request.size();
    respond(stream, &reply, w, h, answering)
}

fn respond(
    mut s: TcpStream,
    reply: &Reply,
    w: u32,
    h: u32,
    answering: impl FnOnce(),
) -> std::io::Result<()> {
    if let Reply::Slow(d) | Reply::Silent(d) = reply {
        std::thread::sleep(*d);
    }
    answering();
    let head = |status: &str, extra: &str, len: Option<usize>| {
        let len = len
            .map(|n| format!("Content-Length: {n}\r\n"))
            .unwrap_or_default();
        format!("HTTP/1.1 {status}\r\n{extra}{len}Connection: close\r\n\r\n")
    };
    let jpeg_type = "Content-Type: image/jpeg\r\n";
    match reply {
        Reply::Jpeg | Reply::JpegOfSize(..) | Reply::Slow(_) => {
            let (w, h) = match reply {
                Reply::JpegOfSize(w, h) => (*w, *h),
                _ => (w, h),
            };
            let body = galaxy_jpeg(w, h);
            s.write_all(head("200 OK", jpeg_type, Some(body.len())).as_bytes())?;
            s.write_all(&body)?;
        }
        Reply::Status(code) => {
            let body = format!(
                "<html><head><title>Error {code}</title></head><body>error {code}</body></html>"
            );
            let text = format!("{code} Error");
            s.write_all(head(&text, "Content-Type: text/html\r\n", Some(body.len())).as_bytes())?;
            s.write_all(body.as_bytes())?;
        }
        Reply::TooManyRequests(after) => {
            let body = "slow down";
            let extra = format!("Retry-After: {after}\r\nContent-Type: text/plain\r\n");
            s.write_all(head("429 Too Many Requests", &extra, Some(body.len())).as_bytes())?;
            s.write_all(body.as_bytes())?;
        }
        Reply::Html200 => {
            let body = "<!DOCTYPE html>\n<html><head><title>SkyServer error: too many requests</title></head>\
                        <body><p>Please try again later.</p></body></html>";
            s.write_all(
                head(
                    "200 OK",
                    "Content-Type: text/html; charset=utf-8\r\n",
                    Some(body.len()),
                )
                .as_bytes(),
            )?;
            s.write_all(body.as_bytes())?;
        }
        Reply::Empty200 => {
            s.write_all(head("200 OK", jpeg_type, Some(0)).as_bytes())?;
        }
        Reply::Truncated => {
            let body = galaxy_jpeg(w, h);
            s.write_all(head("200 OK", jpeg_type, Some(body.len())).as_bytes())?;
            s.write_all(&body[..body.len() / 2])?;
        }
        Reply::DropChunked => {
            let body = galaxy_jpeg(w, h);
            let chunk = &body[..body.len() / 2];
            s.write_all(
                head(
                    "200 OK",
                    "Content-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n",
                    None,
                )
                .as_bytes(),
            )?;
            write!(s, "{:x}\r\n", chunk.len())?;
            s.write_all(chunk)?;
            s.write_all(b"\r\n")?;
        }
        Reply::DropClose => {
            let body = galaxy_jpeg(w, h);
            s.write_all(head("200 OK", jpeg_type, None).as_bytes())?;
            s.write_all(&body[..body.len() / 2])?;
        }
        Reply::Stall(d) => {
            let body = galaxy_jpeg(w, h);
            s.write_all(head("200 OK", jpeg_type, Some(body.len())).as_bytes())?;
            s.write_all(&body[..body.len() / 3])?;
            s.flush()?;
            std::thread::sleep(*d);
        }
        Reply::Silent(_) => {}
    }
    s.flush()?;
    // Closing (dropping) the stream ends the body for the cut-short replies.
    let _ = s.shutdown(std::net::Shutdown::Both);
    Ok(())
}

/// A valid JPEG of a synthetic galaxy (an elliptical glow on dark sky), `width` × `height` pixels. The
/// same size always gives the same bytes.
///
/// # Panics
/// If JPEG encoding fails (it does not for sizes up to 65535).
pub fn galaxy_jpeg(width: u32, height: u32) -> Vec<u8> {
    /// Encoded images by (width, height).
    type Cache = Vec<((u32, u32), Vec<u8>)>;
    static CACHE: Mutex<Cache> = Mutex::new(Vec::new());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, bytes)) = cache.iter().find(|(k, _)| *k == (width, height)) {
        return bytes.clone();
    }
    let (cx, cy) = (width as f32 / 2.0, height as f32 / 2.0);
    let r = (width.min(height) as f32 / 6.0).max(1.0);
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        let (dx, dy) = ((x as f32 - cx) / r, (y as f32 - cy) / (0.6 * r));
        let v = (-(dx * dx + dy * dy) / 2.0).exp();
        image::Rgb([
            (20.0 + 230.0 * v) as u8,
            (15.0 + 200.0 * v) as u8,
            (10.0 + 150.0 * v) as u8,
        ])
    });
    let mut out = Vec::new();
    // Encoding a well-formed in-memory RGB8 image into a Vec cannot fail (no I/O, valid size).
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .expect("JPEG encoding of an in-memory RGB image");
    cache.push(((width, height), out.clone()));
    out
}
