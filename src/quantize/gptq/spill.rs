//! Where the compensated tensors wait until the writer reaches them: an anonymous temporary
//! file (gone when dropped, or when the process dies), so memory holds one tensor at a time.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

pub struct Spill {
    file: File,
    end: u64,
    /// Per tensor (GGUF name): offset and length of its bytes.
    index: BTreeMap<String, (u64, usize)>,
}

impl Spill {
    pub fn new() -> io::Result<Spill> {
        Ok(Spill {
            file: tempfile::tempfile()?,
            end: 0,
            index: BTreeMap::new(),
        })
    }

    pub fn put(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(self.end))?;
        self.file.write_all(bytes)?;
        self.index.insert(name.to_string(), (self.end, bytes.len()));
        self.end += bytes.len() as u64;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// The bytes of tensor `name`, if it was put here.
    pub fn get(&mut self, name: &str) -> io::Result<Option<Vec<u8>>> {
        let Some(&(offset, len)) = self.index.get(name) else {
            return Ok(None);
        };
        let mut bytes = vec![0u8; len];
        self.file.seek(SeekFrom::Start(offset))?;
        self.file.read_exact(&mut bytes)?;
        Ok(Some(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_back_what_was_put() {
        let mut s = Spill::new().unwrap();
        s.put("a", &[1, 2, 3]).unwrap();
        s.put("b", &[4, 5]).unwrap();
        assert_eq!(s.get("b").unwrap(), Some(vec![4, 5]));
        assert_eq!(s.get("a").unwrap(), Some(vec![1, 2, 3]));
        assert_eq!(s.get("c").unwrap(), None);
        assert_eq!(s.len(), 2);
    }
}
