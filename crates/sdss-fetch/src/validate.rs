//! Is a response body (or a file already on disk) a complete JPEG of the requested size?

use std::io::Cursor;

use image::ImageDecoder;

use crate::error::FailReason;

/// Checks that `bytes` are a complete, decodable JPEG of `width` × `height` pixels.
///
/// `content_type` is the response's Content-Type, if any; `text/html` (or any text type) is rejected even
/// if the body happened to decode. The body must start with the JPEG start-of-image marker and end with
/// the end-of-image marker (a cut-short JPEG can otherwise decode, with grey at the bottom), and must
/// decode in full.
///
/// ```
/// use sdss_fetch::{check_jpeg, FailReason};
/// let html = b"<html><body>Server too busy</body></html>";
/// assert!(matches!(check_jpeg(html, Some("text/html"), 424, 424), Err(FailReason::NotJpeg { .. })));
/// assert_eq!(check_jpeg(b"", None, 424, 424), Err(FailReason::Empty));
/// ```
pub fn check_jpeg(
    bytes: &[u8],
    content_type: Option<&str>,
    width: u32,
    height: u32,
) -> Result<(), FailReason> {
    if bytes.is_empty() {
        return Err(FailReason::Empty);
    }
    let is_text = content_type.is_some_and(|c| {
        let c = c.trim().to_ascii_lowercase();
        c.starts_with("text/") || c.contains("html") || c.contains("json") || c.contains("xml")
    });
    if is_text || !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Err(FailReason::NotJpeg {
            content_type: content_type.unwrap_or("unknown").to_owned(),
            snippet: snippet(bytes),
        });
    }
    // Some encoders pad after the end-of-image marker; allow a little trailing padding.
    let end = bytes.len()
        - bytes
            .iter()
            .rev()
            .take(16)
            .take_while(|&&b| b == 0 || b == b'\n' || b == b'\r')
            .count();
    if end < 4 || bytes[end - 2..end] != [0xFF, 0xD9] {
        return Err(FailReason::Corrupt(
            "no end-of-image marker: the image is cut short".into(),
        ));
    }
    let decoder = image::codecs::jpeg::JpegDecoder::new(Cursor::new(bytes))
        .map_err(|e| FailReason::Corrupt(e.to_string()))?;
    let (w, h) = decoder.dimensions();
    if (w, h) != (width, height) {
        return Err(FailReason::WrongSize {
            width,
            height,
            got_width: w,
            got_height: h,
        });
    }
    let mut pixels = vec![
        0u8;
        usize::try_from(decoder.total_bytes())
            .unwrap_or(usize::MAX)
            .min(1 << 28)
    ];
    if u64::try_from(pixels.len()).ok() != Some(decoder.total_bytes()) {
        return Err(FailReason::TooLarge(decoder.total_bytes()));
    }
    decoder
        .read_image(&mut pixels)
        .map_err(|e| FailReason::Corrupt(e.to_string()))?;
    Ok(())
}

/// The first line-ish of a body as text, for messages: an HTML error page's `<title>` if it has one.
fn snippet(bytes: &[u8]) -> String {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(2048)]);
    let lower = head.to_ascii_lowercase();
    let text = match (lower.find("<title>"), lower.find("</title>")) {
        (Some(a), Some(b)) if b > a + 7 => head[a + 7..b].to_string(),
        _ => head.into_owned(),
    };
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let mut out: String = flat.chars().take(100).collect();
    if flat.chars().count() > 100 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img =
            image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, 90]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .unwrap();
        out
    }

    #[test]
    fn accepts_a_complete_jpeg_of_the_right_size() {
        assert_eq!(
            check_jpeg(&jpeg(40, 30), Some("image/jpeg"), 40, 30),
            Ok(())
        );
        assert_eq!(check_jpeg(&jpeg(40, 30), None, 40, 30), Ok(()));
    }

    #[test]
    fn rejects_wrong_size_truncation_html_and_empty() {
        let good = jpeg(40, 30);
        assert!(matches!(
            check_jpeg(&good, None, 30, 40),
            Err(FailReason::WrongSize {
                got_width: 40,
                got_height: 30,
                ..
            })
        ));
        for cut in [good.len() / 2, good.len() - 1, 3] {
            assert!(
                matches!(
                    check_jpeg(&good[..cut], None, 40, 30),
                    Err(FailReason::Corrupt(_))
                ),
                "cut at {cut}"
            );
        }
        let e = check_jpeg(
            b"<!DOCTYPE html><html><head><title>Error 503</title></head></html>",
            None,
            40,
            30,
        )
        .unwrap_err();
        assert_eq!(
            e,
            FailReason::NotJpeg {
                content_type: "unknown".into(),
                snippet: "Error 503".into()
            }
        );
        // A JPEG labelled as HTML is not trusted.
        assert!(matches!(
            check_jpeg(&good, Some("text/html; charset=utf-8"), 40, 30),
            Err(FailReason::NotJpeg { .. })
        ));
        assert_eq!(check_jpeg(&[], None, 40, 30), Err(FailReason::Empty));
    }

    #[test]
    fn rejects_a_jpeg_with_damaged_data_but_intact_markers() {
        let mut bad = jpeg(40, 30);
        let n = bad.len();
        // Keep the header and end marker; replace the entropy-coded data with a bogus marker run.
        for b in &mut bad[n / 2..n - 2] {
            *b = 0xFF;
        }
        assert!(check_jpeg(&bad, None, 40, 30).is_err());
    }
}
