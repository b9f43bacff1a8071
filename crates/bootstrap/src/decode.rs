//! Content decoders shared by both formats: base64, gzip, `data:` URLs, modes.

use std::io::Read;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use crate::{Error, MAX_FILE_SIZE};

/// Standard alphabet; padding optional (Go and Python both accept what CABPK writes).
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decodes base64, skipping ASCII whitespace (block scalars end in a newline;
/// long values are wrapped), as Go's and Python's decoders do.
pub(crate) fn base64(path: &str, input: &[u8]) -> Result<Vec<u8>, Error> {
    let compact: Vec<u8> = input
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    B64.decode(&compact).map_err(|e| Error::InvalidBase64 {
        path: path.to_string(),
        reason: e.to_string(),
    })
}

/// Decompresses gzip (several members are read one after the other, as Go
/// and Python do), refusing output past [`MAX_FILE_SIZE`].
pub(crate) fn gunzip(path: &str, input: &[u8]) -> Result<Vec<u8>, Error> {
    gunzip_limited(path, input, MAX_FILE_SIZE)
}

fn gunzip_limited(path: &str, input: &[u8], max: usize) -> Result<Vec<u8>, Error> {
    let decoder = flate2::read::MultiGzDecoder::new(input);
    let mut out = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    decoder
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| Error::InvalidGzip {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
    if out.len() > max {
        return Err(Error::ContentTooLarge {
            path: path.to_string(),
            limit: max,
        });
    }
    Ok(out)
}

/// The URL scheme of `s` as Go's `url.Parse` would see it, if it has one:
/// `[A-Za-z][A-Za-z0-9+.-]*` followed by `:`.
pub(crate) fn url_scheme(s: &str) -> Option<&str> {
    let colon = s.find(':')?;
    let scheme = s.get(..colon)?;
    let mut bytes = scheme.bytes();
    let first = bytes.next()?;
    if !first.is_ascii_alphabetic() {
        return None;
    }
    if bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-')) {
        Some(scheme)
    } else {
        None
    }
}

/// Decodes an RFC 2397 `data:[<mediatype>][;base64],<data>` URL.
/// The data is percent-decoded; with `;base64` the result is then base64-decoded.
pub(crate) fn data_url(path: &str, url: &str) -> Result<Vec<u8>, Error> {
    let invalid = |reason: &str| Error::InvalidDataUrl {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    // The scheme is case-insensitive; the caller checked it is "data".
    let rest = url.get(5..).ok_or_else(|| invalid("too short"))?;
    let (meta, data) = rest
        .split_once(',')
        .ok_or_else(|| invalid("no ',' between the media type and the data"))?;
    let is_base64 = meta
        .rsplit_once(';')
        .is_some_and(|(_, last)| last.trim().eq_ignore_ascii_case("base64"));
    let raw: Vec<u8> = percent_encoding::percent_decode_str(data).collect();
    if is_base64 {
        base64(path, &raw)
    } else {
        Ok(raw)
    }
}

/// Parses a cloud-init permissions string: octal digits, optionally prefixed
/// with `0o` (Python's `int(s, 8)` accepts it), at most `0o7777`.
pub(crate) fn octal_mode(path: &str, value: &str) -> Result<u32, Error> {
    let bad = |reason: &str| Error::BadPermissions {
        path: path.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let s = value.trim();
    let digits = s
        .strip_prefix("0o")
        .or_else(|| s.strip_prefix("0O"))
        .unwrap_or(s);
    if digits.is_empty() {
        return Err(bad("no digits"));
    }
    let mut mode: u32 = 0;
    for c in digits.chars() {
        let d = c.to_digit(8).ok_or_else(|| bad("not an octal number"))?;
        mode = mode
            .checked_mul(8)
            .and_then(|m| m.checked_add(d))
            .ok_or_else(|| bad("larger than 07777"))?;
        if mode > 0o7777 {
            return Err(bad("larger than 07777"));
        }
    }
    Ok(mode)
}

/// Replaces every `from` in `haystack` with `to`, on bytes (content need not be UTF-8).
pub(crate) fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.is_empty() {
        return haystack.to_vec();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(i) = find(rest, from) {
        let (before, after) = rest.split_at(i);
        out.extend_from_slice(before);
        out.extend_from_slice(to);
        rest = after.get(from.len()..).unwrap_or(&[]);
    }
    out.extend_from_slice(rest);
    out
}

/// Position of the first `needle` in `haystack`.
pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Deepest flow nesting (`[`, `{`) accepted before a text is handed to the
/// YAML parser, whose time grows with the square of that depth. The parser
/// refuses anything deeper than 128 levels anyway; brackets inside quoted or
/// block scalars also count here, hence the margin.
pub(crate) const MAX_FLOW_DEPTH: usize = 512;

/// Checks that `text` never opens more than [`MAX_FLOW_DEPTH`] unclosed
/// brackets; on failure returns the 1-based line and column where it does.
pub(crate) fn check_flow_depth(text: &str) -> Result<(), (usize, usize)> {
    let (mut depth, mut line, mut column) = (0usize, 1usize, 0usize);
    for b in text.bytes() {
        column += 1;
        match b {
            b'\n' => {
                line += 1;
                column = 0;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Err((line, column));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_skips_whitespace_and_accepts_missing_padding() {
        assert_eq!(base64("/f", b"aGVs\nbG8=\n").unwrap(), b"hello");
        assert_eq!(base64("/f", b"  aGVsbG8 ").unwrap(), b"hello");
        assert_eq!(base64("/f", b"").unwrap(), b"");
        assert!(
            matches!(base64("/f", b"a*b="), Err(Error::InvalidBase64 { path, .. }) if path == "/f")
        );
    }

    #[test]
    fn gunzip_reads_several_members_and_refuses_garbage() {
        use flate2::write::GzEncoder;
        use std::io::Write;
        let gz = |b: &[u8]| {
            let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(b).unwrap();
            e.finish().unwrap()
        };
        let mut two = gz(b"ab");
        two.extend(gz(b"cd"));
        assert_eq!(gunzip("/f", &two).unwrap(), b"abcd");
        assert!(
            matches!(gunzip("/g", b"not gzip"), Err(Error::InvalidGzip { path, .. }) if path == "/g")
        );
        let mut truncated = gz(b"hello world");
        truncated.truncate(truncated.len() - 4);
        assert!(matches!(
            gunzip("/g", &truncated),
            Err(Error::InvalidGzip { .. })
        ));
    }

    #[test]
    fn gunzip_stops_at_the_size_limit() {
        use flate2::write::GzEncoder;
        use std::io::Write;
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&vec![0u8; (1 << 20) + 1]).unwrap();
        let bomb = e.finish().unwrap();
        assert!(bomb.len() < 20 << 10);
        assert_eq!(
            gunzip_limited("/bomb", &bomb, 1 << 20),
            Err(Error::ContentTooLarge {
                path: "/bomb".into(),
                limit: 1 << 20
            })
        );
        assert_eq!(
            gunzip_limited("/ok", &bomb, (1 << 20) + 1).map(|v| v.len()),
            Ok((1 << 20) + 1)
        );
        assert_eq!(MAX_FILE_SIZE, 64 << 20);
    }

    #[test]
    fn url_schemes_as_go_parses_them() {
        assert_eq!(url_scheme("data:,x"), Some("data"));
        assert_eq!(url_scheme("HTTPS://x"), Some("HTTPS"));
        assert_eq!(url_scheme("s3://b/k"), Some("s3"));
        assert_eq!(url_scheme("a+b.c-d:x"), Some("a+b.c-d"));
        assert_eq!(url_scheme("hello"), None);
        assert_eq!(url_scheme(""), None);
        assert_eq!(url_scheme(":x"), None);
        assert_eq!(url_scheme("1a:x"), None);
        assert_eq!(url_scheme("a b:x"), None);
    }

    #[test]
    fn data_urls() {
        assert_eq!(
            data_url("/f", "data:,hello%20world%0A").unwrap(),
            b"hello world\n"
        );
        assert_eq!(data_url("/f", "data:;base64,aGVsbG8=").unwrap(), b"hello");
        assert_eq!(
            data_url("/f", "DATA:text/plain;charset=utf-8;base64,aGVsbG8=").unwrap(),
            b"hello"
        );
        assert_eq!(
            data_url("/f", "data:text/plain;charset=utf-8,a,b").unwrap(),
            b"a,b"
        );
        assert_eq!(data_url("/f", "data:,").unwrap(), b"");
        assert_eq!(data_url("/f", "data:,%ff%00").unwrap(), [0xff, 0x00]);
        assert!(
            matches!(data_url("/f", "data:nocomma"), Err(Error::InvalidDataUrl { path, .. }) if path == "/f")
        );
        assert!(matches!(
            data_url("/f", "data:;base64,!!"),
            Err(Error::InvalidBase64 { .. })
        ));
        // Never slices inside a multi-byte character.
        assert!(data_url("/f", "dataé").is_err());
    }

    #[test]
    fn octal_modes() {
        for (s, m) in [
            ("0644", 0o644),
            ("644", 0o644),
            (" 0600 ", 0o600),
            ("0o755", 0o755),
            ("0O700", 0o700),
            ("07777", 0o7777),
            ("0", 0),
            ("000640", 0o640),
        ] {
            assert_eq!(octal_mode("/f", s).unwrap(), m, "{s}");
        }
        for s in [
            "",
            "0o",
            "0999",
            "rwx",
            "-644",
            "+644",
            "10000",
            "0x1ff",
            "99999999999999999999",
            "6 44",
        ] {
            assert!(
                matches!(octal_mode("/f", s), Err(Error::BadPermissions { .. })),
                "{s}"
            );
        }
    }

    #[test]
    fn replace_and_find_on_bytes() {
        assert_eq!(
            replace_all(b"a kubeadm init b kubeadm init", b"kubeadm init", b"X"),
            b"a X b X"
        );
        assert_eq!(replace_all(b"\xffab\xff", b"ab", b"c"), b"\xffc\xff");
        assert_eq!(replace_all(b"abc", b"", b"X"), b"abc");
        assert_eq!(find(b"abc", b"c"), Some(2));
        assert_eq!(find(b"ab", b"abc"), None);
    }
}
