//! A streaming `multipart/related` reader (RFC 2046 §5.1, RFC 2387) over a
//! blocking reader: each part's headers, then its body handed over in chunks as
//! it arrives — a WADO-RS answer of a whole series is never held in memory. The
//! end of the stream before the close delimiter is an error (a server that drops
//! the connection mid-answer, or Orthanc's close-delimited answers cut short).

use std::io::Read;

/// Largest part header block accepted.
const MAX_HEADERS: usize = 16 * 1024;
/// Read size.
const CHUNK: usize = 256 * 1024;

/// The boundary of a `multipart/related` Content-Type (unquoted), checking the
/// media type and, when `expect_type` is given, its `type` parameter.
pub fn boundary(content_type: &str, expect_type: Option<&str>) -> Result<String, String> {
    let mut parts = content_type.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("multipart/related") {
        return Err(format!("answered {content_type:?}, not multipart/related"));
    }
    let mut boundary = None;
    let mut ty = None;
    for p in parts {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        match k.trim().to_ascii_lowercase().as_str() {
            "boundary" => boundary = Some(v.to_string()),
            "type" => ty = Some(v.to_string()),
            _ => {}
        }
    }
    if let (Some(want), Some(got)) = (expect_type, &ty)
        && !got.eq_ignore_ascii_case(want)
    {
        return Err(format!("answered parts of type {got:?}, not {want:?}"));
    }
    match boundary {
        Some(b) if !b.is_empty() && b.len() <= 70 => Ok(b),
        _ => Err(format!("no usable boundary in {content_type:?}")),
    }
}

/// A part's headers (names lower-cased).
#[derive(Debug, Clone, Default)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parts of a multipart body, one at a time.
#[derive(Debug)]
pub struct Parts<R> {
    r: R,
    buf: Vec<u8>,
    start: usize,
    /// `CRLF "--" boundary`.
    delim: Vec<u8>,
    /// Positioned right after a delimiter (`None` before the first).
    after_delim: bool,
    done: bool,
}

impl<R: Read> Parts<R> {
    pub fn new(r: R, boundary: &str) -> Parts<R> {
        // The body may start with the delimiter itself (no CRLF before it): a CRLF
        // put in front makes every delimiter look alike.
        Parts {
            r,
            buf: b"\r\n".to_vec(),
            start: 0,
            delim: format!("\r\n--{boundary}").into_bytes(),
            after_delim: false,
            done: false,
        }
    }

    /// Read more; false at the end of the stream.
    fn fill(&mut self) -> std::io::Result<bool> {
        if self.start > 0 && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + CHUNK, 0);
        let n = loop {
            match self.r.read(&mut self.buf[len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(len);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(len + n);
        Ok(n > 0)
    }

    fn find(&self, needle: &[u8]) -> Option<usize> {
        memchr::memmem::find(&self.buf[self.start..], needle).map(|p| self.start + p)
    }

    /// Bytes available from `start`, reading until at least `n` or the end.
    fn want(&mut self, n: usize) -> std::io::Result<bool> {
        while self.buf.len() - self.start < n {
            if !self.fill()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The next part: its headers, its body given to `sink` chunk by chunk. `None`
    /// after the close delimiter. A stream that ends before it is an error.
    pub fn next_part(
        &mut self,
        sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<Option<Headers>> {
        let cut = |what: &str| {
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the multipart answer ends {what} (connection closed early?)"),
            )
        };
        if self.done {
            return Ok(None);
        }
        if !self.after_delim {
            // Skip the preamble up to the first delimiter.
            loop {
                if let Some(p) = self.find(&self.delim.clone()) {
                    self.start = p + self.delim.len();
                    break;
                }
                let keep = self.buf.len().saturating_sub(self.delim.len());
                self.start = self.start.max(keep);
                if !self.fill()? {
                    return Err(cut("before its first part"));
                }
            }
            self.after_delim = true;
        }
        // After a delimiter: "--" closes, else padding and CRLF open a part.
        if !self.want(2)? {
            return Err(cut("after a boundary"));
        }
        if &self.buf[self.start..self.start + 2] == b"--" {
            self.done = true;
            return Ok(None);
        }
        loop {
            if !self.want(1)? {
                return Err(cut("after a boundary"));
            }
            match self.buf[self.start] {
                b' ' | b'\t' => self.start += 1,
                _ => break,
            }
        }
        if !self.want(2)? || &self.buf[self.start..self.start + 2] != b"\r\n" {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "malformed multipart: no CRLF after a boundary",
            ));
        }
        self.start += 2;
        // Headers up to an empty line.
        let headers = loop {
            if self.buf.len() - self.start >= 2 && &self.buf[self.start..self.start + 2] == b"\r\n"
            {
                self.start += 2;
                break Headers::default();
            }
            if let Some(p) = self.find(b"\r\n\r\n") {
                let text = String::from_utf8_lossy(&self.buf[self.start..p]).to_string();
                self.start = p + 4;
                let mut h = Vec::new();
                for line in text.split("\r\n") {
                    if let Some((k, v)) = line.split_once(':') {
                        h.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                    }
                }
                break Headers(h);
            }
            if self.buf.len() - self.start > MAX_HEADERS {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "malformed multipart: part headers over 16 KiB",
                ));
            }
            if !self.fill()? {
                return Err(cut("in a part's headers"));
            }
        };
        // The body, up to the next delimiter (whose CRLF belongs to it).
        loop {
            if let Some(p) = self.find(&self.delim.clone()) {
                sink(&self.buf[self.start..p])?;
                self.start = p + self.delim.len();
                return Ok(Some(headers));
            }
            // What cannot be the start of a delimiter goes out now.
            let safe = self.buf.len().saturating_sub(self.delim.len() - 1);
            if safe > self.start {
                sink(&self.buf[self.start..safe])?;
                self.start = safe;
            }
            if !self.fill()? {
                return Err(cut("in the middle of a part"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes a call.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(self.0.len()).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn parts(body: &[u8], boundary: &str, step: usize) -> std::io::Result<Vec<(Headers, Vec<u8>)>> {
        let mut p = Parts::new(Trickle(body, step), boundary);
        let mut out = Vec::new();
        loop {
            let mut data = Vec::new();
            match p.next_part(&mut |c| {
                data.extend_from_slice(c);
                Ok(())
            })? {
                Some(h) => out.push((h, data)),
                None => return Ok(out),
            }
        }
    }

    #[test]
    fn parts_come_out_whole_however_the_bytes_arrive() {
        let a: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        // Data that looks like the start of a delimiter.
        let b = b"x\r\n--BOUNDARx\r\n--BOUNDAR".to_vec();
        let mut body =
            b"preamble\r\n--BOUNDARY\r\nContent-Type: application/dicom\r\n\r\n".to_vec();
        body.extend(&a);
        body.extend(b"\r\n--BOUNDARY  \r\nContent-Type:application/dicom\r\n\r\n");
        body.extend(&b);
        body.extend(b"\r\n--BOUNDARY--\r\nepilogue");
        for step in [1, 2, 3, 7, 64, 4096, 1 << 20] {
            let got = parts(&body, "BOUNDARY", step).expect("parts");
            assert_eq!(got.len(), 2, "step {step}");
            assert_eq!(got[0].1, a, "step {step}");
            assert_eq!(got[1].1, b, "step {step}");
            assert_eq!(got[1].0.get("Content-Type"), Some("application/dicom"));
        }
        // No preamble, and no parts at all.
        assert_eq!(
            parts(b"--B\r\n\r\nxy\r\n--B--", "B", 3).expect("parts")[0].1,
            b"xy"
        );
        assert!(parts(b"--B--\r\n", "B", 1).expect("empty").is_empty());
    }

    #[test]
    fn a_cut_answer_is_an_error_and_the_boundary_is_read_from_the_type() {
        let body = b"--B\r\nContent-Type: application/dicom\r\n\r\nabcdef";
        let e = parts(body, "B", 2).expect_err("cut");
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
        let e = parts(b"--B\r\n\r\nab\r\n--B\r\n\r\ncd", "B", 5).expect_err("no close");
        assert!(e.to_string().contains("middle of a part"), "{e}");
        assert_eq!(
            boundary(
                "multipart/related; type=\"application/dicom\"; boundary=\"a b:c\"",
                Some("application/dicom")
            ),
            Ok("a b:c".to_string())
        );
        assert!(boundary("application/json", None).is_err());
        assert!(
            boundary(
                "multipart/related; type=application/json; boundary=x",
                Some("application/dicom")
            )
            .is_err()
        );
    }
}
