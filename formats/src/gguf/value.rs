//! GGUF metadata values. STUB: to be implemented.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Array),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// A homogeneous array (GGUF has no nested arrays in practice; llq refuses them).
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(Vec<String>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

impl Value {
    pub fn value_type(&self) -> ValueType {
        todo!()
    }
    /// The value as u64 if it is any integer type that fits.
    pub fn as_u64(&self) -> Option<u64> {
        todo!()
    }
    pub fn as_f32(&self) -> Option<f32> {
        todo!()
    }
    pub fn as_str(&self) -> Option<&str> {
        todo!()
    }
    pub fn as_array(&self) -> Option<&Array> {
        todo!()
    }
    /// JSON form for `llq inspect --json`.
    pub fn to_json(&self) -> serde_json::Value {
        todo!()
    }
}
