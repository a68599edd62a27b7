//! Read-only view of a zip archive's STORED entries, as torch.save writes them.
//!
//! torch writes every entry uncompressed (method 0) with a data descriptor (bit 3), so the local
//! headers carry zero sizes: sizes and offsets come from the central directory, and the local
//! header is only read to skip its name and padding extra field. Compressed or encrypted entries
//! cannot be memory-mapped as tensors and are refused. Every offset and size is checked against
//! the buffer, so a truncated or hostile file gives an error, never a panic.

use std::collections::HashSet;
use std::ops::Range;

/// One archive member: its name and where its bytes lie in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub data: Range<usize>,
}

const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD_LEN: usize = 22;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_LOCATOR_LEN: usize = 20;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const ZIP64_EOCD_LEN: usize = 56;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const CENTRAL_LEN: usize = 46;
const LOCAL_SIG: u32 = 0x0403_4b50;
const LOCAL_LEN: usize = 30;
const ZIP64_EXTRA_ID: u16 = 0x0001;
/// The EOCD comment length is a u16, so the record starts at most this far from the end.
const MAX_EOCD_SEARCH: usize = EOCD_LEN + 0xffff;
/// Flag bits 0 (encrypted) and 6 (strong encryption).
const ENCRYPTED_FLAGS: u16 = 0x0041;

/// Little-endian field reads that fail instead of panicking when `bytes` is too short.
struct Reader<'a> {
    bytes: &'a [u8],
    what: &'a str,
}

impl Reader<'_> {
    fn slice(&self, at: usize, len: usize) -> Result<&[u8], String> {
        at.checked_add(len)
            .and_then(|end| self.bytes.get(at..end))
            .ok_or_else(|| {
                format!(
                    "zip {} at offset {at} runs past the end of the file",
                    self.what
                )
            })
    }
    fn u16(&self, at: usize) -> Result<u16, String> {
        let b = self.slice(at, 2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&self, at: usize) -> Result<u32, String> {
        let b = self.slice(at, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&self, at: usize) -> Result<u64, String> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.slice(at, 8)?);
        Ok(u64::from_le_bytes(b))
    }
}

fn to_usize(v: u64, what: &str) -> Result<usize, String> {
    usize::try_from(v).map_err(|_| format!("zip {what} {v} does not fit in memory"))
}

/// Where the central directory is and how many entries it holds.
struct Directory {
    offset: usize,
    size: usize,
    count: u64,
}

/// All entries of the archive in central-directory order.
pub fn entries(bytes: &[u8]) -> Result<Vec<Entry>, String> {
    let eocd = find_eocd(bytes)?;
    let dir = directory(bytes, eocd)?;
    let end = dir
        .offset
        .checked_add(dir.size)
        .filter(|&end| end <= bytes.len())
        .ok_or("zip central directory runs past the end of the file (truncated?)")?;
    let cd = Reader {
        bytes: &bytes[dir.offset..end],
        what: "central directory entry",
    };
    // Each record is at least CENTRAL_LEN bytes, which bounds a lying entry count.
    if dir.count > (dir.size / CENTRAL_LEN) as u64 {
        return Err(format!(
            "zip central directory claims {} entries but has room for at most {}",
            dir.count,
            dir.size / CENTRAL_LEN
        ));
    }
    let mut out: Vec<Entry> = Vec::with_capacity(dir.count as usize);
    let mut names = HashSet::new();
    let mut at = 0;
    for _ in 0..dir.count {
        let (entry, next) = central_entry(&cd, at, bytes)?;
        // Two members with one name would let two readers see different files.
        if !names.insert(entry.name.clone()) {
            return Err(format!("zip entry {:?} appears twice", entry.name));
        }
        out.push(entry);
        at = next;
    }
    Ok(out)
}

/// Offset of the End Of Central Directory record: the last signature whose comment reaches
/// exactly to the end of the file.
fn find_eocd(bytes: &[u8]) -> Result<usize, String> {
    let r = Reader {
        bytes,
        what: "end of central directory",
    };
    let last = bytes
        .len()
        .checked_sub(EOCD_LEN)
        .ok_or("file too short to be a zip archive (truncated?)")?;
    let first = bytes.len().saturating_sub(MAX_EOCD_SEARCH);
    for at in (first..=last).rev() {
        if r.u32(at)? == EOCD_SIG && at + EOCD_LEN + r.u16(at + 20)? as usize == bytes.len() {
            return Ok(at);
        }
    }
    Err("no zip end of central directory record (truncated or not a zip file)".into())
}

/// Read the EOCD, and the ZIP64 EOCD when a locator precedes it (torch always writes one).
fn directory(bytes: &[u8], eocd: usize) -> Result<Directory, String> {
    let r = Reader {
        bytes,
        what: "end of central directory",
    };
    if r.u16(eocd + 4)? != 0 || r.u16(eocd + 6)? != 0 {
        return Err("multi-disk zip archives are not supported".into());
    }
    let mut dir = Directory {
        count: r.u16(eocd + 10)?.into(),
        size: r.u32(eocd + 12)? as usize,
        offset: r.u32(eocd + 16)? as usize,
    };
    let needs_zip64 = dir.count == 0xffff || dir.size == 0xffff_ffff || dir.offset == 0xffff_ffff;
    let has_locator =
        eocd >= ZIP64_LOCATOR_LEN && r.u32(eocd - ZIP64_LOCATOR_LEN)? == ZIP64_LOCATOR_SIG;
    if !has_locator {
        return match needs_zip64 {
            true => Err("zip end of central directory needs ZIP64 but has no ZIP64 locator".into()),
            false => Ok(dir),
        };
    }
    let loc = eocd - ZIP64_LOCATOR_LEN;
    let r = Reader {
        bytes,
        what: "ZIP64 end of central directory",
    };
    let rec = to_usize(r.u64(loc + 8)?, "ZIP64 record offset")?;
    if rec
        .checked_add(ZIP64_EOCD_LEN)
        .filter(|&end| end <= loc)
        .is_none()
    {
        return Err(format!(
            "zip ZIP64 end of central directory offset {rec} is out of bounds"
        ));
    }
    if r.u32(rec)? != ZIP64_EOCD_SIG {
        return Err(format!(
            "no ZIP64 end of central directory record at offset {rec}"
        ));
    }
    if r.u32(rec + 16)? != 0 || r.u32(rec + 20)? != 0 {
        return Err("multi-disk zip archives are not supported".into());
    }
    dir.count = r.u64(rec + 32)?;
    dir.size = to_usize(r.u64(rec + 40)?, "central directory size")?;
    dir.offset = to_usize(r.u64(rec + 48)?, "central directory offset")?;
    Ok(dir)
}

/// Parse the central record at `at` of `cd`, then its local header in `file`. Returns the entry
/// and the offset of the next central record.
fn central_entry(cd: &Reader, at: usize, file: &[u8]) -> Result<(Entry, usize), String> {
    if cd.u32(at)? != CENTRAL_SIG {
        return Err(format!(
            "bad zip central directory signature at directory offset {at}"
        ));
    }
    let flags = cd.u16(at + 8)?;
    let method = cd.u16(at + 10)?;
    let mut compressed = u64::from(cd.u32(at + 20)?);
    let mut size = u64::from(cd.u32(at + 24)?);
    let name_len = cd.u16(at + 28)? as usize;
    let extra_len = cd.u16(at + 30)? as usize;
    let comment_len = cd.u16(at + 32)? as usize;
    let mut local = u64::from(cd.u32(at + 42)?);
    let name_at = at + CENTRAL_LEN;
    let name = std::str::from_utf8(cd.slice(name_at, name_len)?)
        .map_err(|_| format!("zip entry name at directory offset {at} is not UTF-8"))?
        .to_string();
    check_name(&name)?;
    if flags & ENCRYPTED_FLAGS != 0 {
        return Err(format!(
            "zip entry {name:?} is encrypted; torch never writes encrypted entries"
        ));
    }
    if method != 0 {
        return Err(format!(
            "zip entry {name:?} is compressed (method {method}); only STORED entries can be \
             mapped, re-save the file with torch.save"
        ));
    }
    // ZIP64 extra: 8-byte values replace, in this order, exactly the fields saturated to 0xffffffff.
    let extra = cd.slice(name_at + name_len, extra_len)?;
    if let Some(z) = find_extra(extra, ZIP64_EXTRA_ID, &name)? {
        let mut fields = z.chunks_exact(8).map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            u64::from_le_bytes(b)
        });
        for field in [&mut size, &mut compressed, &mut local] {
            if *field == 0xffff_ffff {
                *field = fields
                    .next()
                    .ok_or_else(|| format!("zip entry {name:?}: ZIP64 extra field too short"))?;
            }
        }
    }
    if compressed != size {
        return Err(format!(
            "zip entry {name:?}: stored size {compressed} differs from its size {size}"
        ));
    }
    let data = local_data(file, to_usize(local, "local header offset")?, &name)?;
    let data = data
        .checked_add(to_usize(size, "entry size")?)
        .filter(|&end| end <= file.len())
        .map(|end| data..end)
        .ok_or_else(|| format!("zip entry {name:?} runs past the end of the file (truncated?)"))?;
    let next = name_at + name_len + extra_len + comment_len;
    Ok((Entry { name, data }, next))
}

/// Start of an entry's data: after the local header, its own name and its (padding) extra field.
fn local_data(file: &[u8], at: usize, name: &str) -> Result<usize, String> {
    let r = Reader {
        bytes: file,
        what: "local header",
    };
    if r.u32(at)? != LOCAL_SIG {
        return Err(format!(
            "zip entry {name:?}: no local header at offset {at}"
        ));
    }
    let name_len = r.u16(at + 26)? as usize;
    let extra_len = r.u16(at + 28)? as usize;
    // A local name that disagrees with the central one means two readers would see two files.
    if r.slice(at + LOCAL_LEN, name_len)? != name.as_bytes() {
        return Err(format!(
            "zip entry {name:?}: local header names a different file"
        ));
    }
    Ok(at + LOCAL_LEN + name_len + extra_len)
}

/// The payload of the extra-field block with id `id`, if any.
fn find_extra<'a>(mut extra: &'a [u8], id: u16, name: &str) -> Result<Option<&'a [u8]>, String> {
    while !extra.is_empty() {
        let bad = || format!("zip entry {name:?}: malformed extra field");
        let head = extra.get(..4).ok_or_else(bad)?;
        let block_id = u16::from_le_bytes([head[0], head[1]]);
        let len = u16::from_le_bytes([head[2], head[3]]) as usize;
        let body = extra.get(4..4 + len).ok_or_else(bad)?;
        if block_id == id {
            return Ok(Some(body));
        }
        extra = &extra[4 + len..];
    }
    Ok(None)
}

/// Refuse names that would escape a directory if anyone extracted the archive ("zip slip"):
/// such a name never comes from torch.save, so the file is hostile or broken.
fn check_name(name: &str) -> Result<(), String> {
    let absolute = name.starts_with('/') || name.starts_with('\\') || name.contains(':');
    if absolute || name.split(['/', '\\']).any(|part| part == "..") {
        return Err(format!(
            "zip entry name {name:?} escapes the archive (absolute or '..')"
        ));
    }
    Ok(())
}
