//! The Kubeconfig RPC's payload: a gzip-compressed tar archive holding one
//! regular file named `kubeconfig`, mode 0600 (api.md §3.4). Both
//! directions, with a minimal ustar reader and writer (one small file is all
//! Talos puts in it).

use std::io::Read as _;
#[cfg(any(test, feature = "sim"))]
use std::io::Write as _;

const BLOCK: usize = 512;

/// The archive could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Not gzip, or truncated.
    #[error("not a gzip stream")]
    Gzip(#[source] std::io::Error),
    /// The tar structure is broken.
    #[error("malformed tar archive: {0}")]
    Tar(&'static str),
    /// No `kubeconfig` entry.
    #[error("the archive holds no `kubeconfig` file")]
    Missing,
    /// Decompresses to more than [`MAX_ARCHIVE`] bytes.
    #[error("the archive is larger than {MAX_ARCHIVE} bytes once decompressed")]
    TooLarge,
}

/// The most a kubeconfig archive may decompress to (a kubeconfig is a few
/// KiB; this bounds what a misbehaving node can make us allocate).
pub const MAX_ARCHIVE: u64 = 16 << 20;

/// Extracts the `kubeconfig` file from the gzip tar Talos streams.
pub fn extract_kubeconfig(gz: &[u8]) -> Result<Vec<u8>, ArchiveError> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(gz).take(MAX_ARCHIVE + 1).read_to_end(&mut tar).map_err(ArchiveError::Gzip)?;
    if tar.len() as u64 > MAX_ARCHIVE {
        return Err(ArchiveError::TooLarge);
    }
    let mut pos = 0;
    while pos + BLOCK <= tar.len() {
        let header = &tar[pos..pos + BLOCK];
        if header.iter().all(|b| *b == 0) {
            break;
        }
        let name = cstr(&header[0..100]);
        let prefix = cstr(&header[345..500]);
        let size = octal(&header[124..136]).ok_or(ArchiveError::Tar("bad size field"))?;
        let typeflag = header[156];
        let start = pos + BLOCK;
        let end = start.checked_add(size).ok_or(ArchiveError::Tar("size overflow"))?;
        if end > tar.len() {
            return Err(ArchiveError::Tar("entry runs past the end"));
        }
        let full = if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") };
        let regular = typeflag == b'0' || typeflag == 0;
        if regular && full.trim_start_matches("./") == "kubeconfig" {
            return Ok(tar[start..end].to_vec());
        }
        pos = start + size.div_ceil(BLOCK) * BLOCK;
    }
    Err(ArchiveError::Missing)
}

/// Builds the archive a node sends: gzip(tar{`kubeconfig`, 0600}). For the
/// simulator and tests only: the provider reads archives, never writes one.
#[cfg(any(test, feature = "sim"))]
pub fn kubeconfig_archive(kubeconfig: &[u8], mtime: u64) -> std::io::Result<Vec<u8>> {
    let mut header = [0u8; BLOCK];
    header[0..10].copy_from_slice(b"kubeconfig");
    put_octal(&mut header[100..108], 0o600);
    put_octal(&mut header[108..116], 0);
    put_octal(&mut header[116..124], 0);
    put_octal(&mut header[124..136], kubeconfig.len() as u64);
    put_octal(&mut header[136..148], mtime);
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u64 = header.iter().map(|b| u64::from(*b)).sum();
    put_octal(&mut header[148..155], sum);
    header[155] = b' ';
    let mut tar = header.to_vec();
    tar.extend_from_slice(kubeconfig);
    tar.resize(BLOCK + kubeconfig.len().div_ceil(BLOCK) * BLOCK + 2 * BLOCK, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar)?;
    gz.finish()
}

fn cstr(field: &[u8]) -> &str {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    std::str::from_utf8(&field[..end]).unwrap_or("")
}

fn octal(field: &[u8]) -> Option<usize> {
    let s = cstr(field).trim();
    if s.is_empty() {
        return Some(0);
    }
    usize::from_str_radix(s, 8).ok()
}

/// Zero-padded octal, NUL-terminated, filling `field`.
#[cfg(any(test, feature = "sim"))]
fn put_octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    let bytes = text.as_bytes();
    let n = bytes.len().min(width);
    field[..n].copy_from_slice(&bytes[bytes.len() - n..]);
    field[width] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gzip_bomb_is_refused_not_allocated() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..=(MAX_ARCHIVE >> 20) {
            enc.write_all(&zeros).unwrap();
        }
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 1 << 20, "compresses well");
        assert!(matches!(extract_kubeconfig(&bomb), Err(ArchiveError::TooLarge)));
    }

    #[test]
    fn round_trip_and_missing_entry() {
        let gz = kubeconfig_archive(b"apiVersion: v1\n", 1_700_000_000).unwrap();
        assert_eq!(extract_kubeconfig(&gz).unwrap(), b"apiVersion: v1\n");
        assert!(matches!(extract_kubeconfig(b"plain"), Err(ArchiveError::Gzip(_))));
        let mut empty = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        empty.write_all(&[0u8; 1024]).unwrap();
        assert!(matches!(extract_kubeconfig(&empty.finish().unwrap()), Err(ArchiveError::Missing)));
    }
}
