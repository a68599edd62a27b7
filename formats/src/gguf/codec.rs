//! Little-endian byte encoding shared by the reader and the writer: a bounds-checked cursor over
//! untrusted bytes, and one `Elem` implementation per GGUF element type.

/// Reads from a byte slice. Every read checks the remaining length first, so a lying length or
/// count fails here instead of allocating or panicking.
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// The next `n` bytes. `n` is a u64 because lengths in the file are.
    pub(crate) fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
        let fits = usize::try_from(n).ok().filter(|&n| n <= self.remaining());
        let Some(n) = fits else {
            return Err(format!(
                "truncated: needs {n} bytes at offset {} but only {} remain",
                self.pos,
                self.remaining()
            ));
        };
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub(crate) fn read<T: Elem>(&mut self) -> Result<T, String> {
        T::decode(self)
    }

    /// Refuse `count` items of at least `min_size` bytes each when the rest of the input cannot
    /// hold them: this bounds every allocation by the input size.
    pub(crate) fn check_count(
        &self,
        count: u64,
        min_size: usize,
        what: &str,
    ) -> Result<(), String> {
        let max = (self.remaining() / min_size.max(1)) as u64;
        if count > max {
            return Err(format!(
                "{what} count {count} cannot fit in the {} bytes left at offset {}",
                self.remaining(),
                self.pos
            ));
        }
        Ok(())
    }
}

/// One GGUF element type: how it is read and written.
pub(crate) trait Elem: Sized {
    /// The fewest bytes an encoded value takes, to bound counts before allocating.
    const MIN_SIZE: usize;
    fn decode(c: &mut Cursor<'_>) -> Result<Self, String>;
    fn encode(&self, out: &mut Vec<u8>);
}

/// Fixed-size numbers: `to_le_bytes` / `from_le_bytes` of their own width.
macro_rules! le_elem {
    ($($t:ty),*) => {$(
        impl Elem for $t {
            const MIN_SIZE: usize = std::mem::size_of::<$t>();
            fn decode(c: &mut Cursor<'_>) -> Result<Self, String> {
                let bytes = c.take(Self::MIN_SIZE as u64)?;
                // `take` returned exactly MIN_SIZE bytes, so the conversion cannot fail.
                let array = bytes.try_into().map_err(|_| "internal: short read".to_string())?;
                Ok(<$t>::from_le_bytes(array))
            }
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}

le_elem!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);

/// One byte, 0 or 1. Other values are refused so that reading and writing round-trip exactly.
impl Elem for bool {
    const MIN_SIZE: usize = 1;
    fn decode(c: &mut Cursor<'_>) -> Result<Self, String> {
        match c.read::<u8>()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!(
                "bool byte {b} at offset {} is not 0 or 1",
                c.pos() - 1
            )),
        }
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

/// u64 byte length, then UTF-8 bytes without a terminator.
impl Elem for String {
    const MIN_SIZE: usize = 8;
    fn decode(c: &mut Cursor<'_>) -> Result<Self, String> {
        let start = c.pos();
        let len = c.read::<u64>()?;
        let bytes = c.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| format!("string at offset {start} is not valid UTF-8"))
    }
    fn encode(&self, out: &mut Vec<u8>) {
        (self.len() as u64).encode(out);
        out.extend_from_slice(self.as_bytes());
    }
}
