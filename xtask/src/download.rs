//! HTTP(S) download with resume (HTTP Range on a `.part` file) and SHA-256 verification.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Lowercase-hex SHA-256 of a file, read in blocks.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// File name for a URL's download: its last path segment, reduced to safe characters.
pub fn file_name_for(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let last = path
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or("download");
    let clean: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() || clean.starts_with('.') {
        format!("download{clean}")
    } else {
        clean
    }
}

/// Downloads `url` into `dir` and returns the final path. A previous interrupted download (`<name>.part`) is
/// resumed with an HTTP Range request; a finished file whose checksum matches `sha256` is reused. When
/// `sha256` is given, a mismatch is an error and the bad file is removed.
pub fn download(url: &str, dir: &Path, sha256: Option<&str>) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let name = file_name_for(url);
    let dest = dir.join(&name);
    let part = dir.join(format!("{name}.part"));
    if dest.exists() {
        if let Some(want) = sha256 {
            let have = sha256_file(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
            if have.eq_ignore_ascii_case(want) {
                eprintln!(
                    "fetch-weights: {} already downloaded (checksum ok)",
                    dest.display()
                );
                return Ok(dest);
            }
        }
        // Without a checksum a previous download cannot be trusted to be the same file: fetch again.
        std::fs::remove_file(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    }
    let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.get(url);
    if have > 0 {
        req = req.header("Range", &format!("bytes={have}-"));
    }
    let mut resp = req.call().map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    let append = match status {
        206 => true,
        200 => false,
        // The part file already holds everything.
        416 if have > 0 => true,
        s => return Err(format!("{url}: HTTP status {s}")),
    };
    if status != 416 {
        if have > 0 && append {
            eprintln!("fetch-weights: resuming {name} at byte {have}");
        }
        let mut out = OpenOptions::new()
            .create(true)
            .append(append)
            .write(true)
            .truncate(!append)
            .open(&part)
            .map_err(|e| format!("{}: {e}", part.display()))?;
        let mut body = resp.body_mut().as_reader();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = body
                .read(&mut buf)
                .map_err(|e| format!("{url}: download interrupted ({e}); run again to resume"))?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])
                .map_err(|e| format!("{}: {e}", part.display()))?;
        }
        out.sync_all()
            .map_err(|e| format!("{}: {e}", part.display()))?;
    }
    let got = sha256_file(&part).map_err(|e| format!("{}: {e}", part.display()))?;
    if let Some(want) = sha256 {
        if !got.eq_ignore_ascii_case(want) {
            let _ = std::fs::remove_file(&part);
            return Err(format!(
                "{url}: checksum mismatch: expected sha256 {want}, downloaded file has {got}"
            ));
        }
    } else {
        eprintln!("fetch-weights: sha256 of {name}: {got} (pass --sha256 to verify next time)");
    }
    std::fs::rename(&part, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;

    /// A one-file HTTP server on 127.0.0.1 that honours `Range: bytes=N-`; the first response stops after
    /// `cut` bytes (a dropped connection), later ones are complete.
    fn serve(
        data: Vec<u8>,
        cut: usize,
        requests: usize,
    ) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/models/sdss_cnn.h5",
            listener.local_addr().unwrap()
        );
        let handle = std::thread::spawn(move || {
            let mut ranges = Vec::new();
            for i in 0..requests {
                let (mut s, _) = listener.accept().unwrap();
                let mut r = std::io::BufReader::new(s.try_clone().unwrap());
                let mut start = 0usize;
                loop {
                    let mut line = String::new();
                    r.read_line(&mut line).unwrap();
                    if line.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                        start = v.trim().trim_end_matches('-').parse().unwrap();
                        ranges.push(line.trim().to_ascii_lowercase());
                    }
                }
                let body = &data[start..];
                let (status, extra) = if start > 0 {
                    (
                        "206 Partial Content",
                        format!(
                            "Content-Range: bytes {start}-{}/{}\r\n",
                            data.len() - 1,
                            data.len()
                        ),
                    )
                } else {
                    ("200 OK", String::new())
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
                    body.len()
                );
                s.write_all(head.as_bytes()).unwrap();
                let n = if i == 0 {
                    cut.min(body.len())
                } else {
                    body.len()
                };
                let _ = s.write_all(&body[..n]);
            }
            ranges
        });
        (url, handle)
    }

    #[test]
    fn resumes_an_interrupted_download_and_checks_the_checksum() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let want = {
            let d = Sha256::digest(&data);
            d.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        let dir = tempfile::tempdir().unwrap();
        let (url, server) = serve(data.clone(), 70_000, 2);
        let first = download(&url, dir.path(), Some(&want));
        assert!(
            first.is_err(),
            "a cut connection must not count as a finished download"
        );
        let part = dir.path().join("sdss_cnn.h5.part");
        assert_eq!(std::fs::metadata(&part).unwrap().len(), 70_000);
        let path = download(&url, dir.path(), Some(&want)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
        assert_eq!(server.join().unwrap(), ["range: bytes=70000-"]);

        // Reused when the checksum matches, without a request.
        assert_eq!(download(&url, dir.path(), Some(&want)).unwrap(), path);
    }

    #[test]
    fn checksum_mismatch_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (url, server) = serve(vec![1, 2, 3], usize::MAX, 1);
        let err = download(&url, dir.path(), Some(&"0".repeat(64))).unwrap_err();
        assert!(err.contains("checksum mismatch"), "{err}");
        assert!(!dir.path().join("sdss_cnn.h5").exists());
        server.join().unwrap();
    }

    #[test]
    fn file_names_are_sanitised() {
        assert_eq!(
            file_name_for("https://x.org/a/b/model.h5?raw=1"),
            "model.h5"
        );
        assert_eq!(file_name_for("https://x.org/a/w%20x.keras"), "w_20x.keras");
        assert_eq!(file_name_for("https://x.org/"), "x.org");
    }
}
