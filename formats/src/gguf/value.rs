//! GGUF metadata values: types, accessors, JSON form, and their byte encoding.

use super::codec::{Cursor, Elem};

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

/// Every type in id order, so that the id indexes it.
const VALUE_TYPES: [ValueType; 13] = [
    ValueType::U8,
    ValueType::I8,
    ValueType::U16,
    ValueType::I16,
    ValueType::U32,
    ValueType::I32,
    ValueType::F32,
    ValueType::Bool,
    ValueType::String,
    ValueType::Array,
    ValueType::U64,
    ValueType::I64,
    ValueType::F64,
];

impl ValueType {
    pub fn from_id(id: u32) -> Option<ValueType> {
        VALUE_TYPES.get(usize::try_from(id).ok()?).copied()
    }

    pub fn id(self) -> u32 {
        self as u32
    }

    /// The name the GGUF spec and gguf-py (`GGUFValueType`) use, e.g. `UINT32`.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::U8 => "UINT8",
            ValueType::I8 => "INT8",
            ValueType::U16 => "UINT16",
            ValueType::I16 => "INT16",
            ValueType::U32 => "UINT32",
            ValueType::I32 => "INT32",
            ValueType::F32 => "FLOAT32",
            ValueType::Bool => "BOOL",
            ValueType::String => "STRING",
            ValueType::Array => "ARRAY",
            ValueType::U64 => "UINT64",
            ValueType::I64 => "INT64",
            ValueType::F64 => "FLOAT64",
        }
    }
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

/// Calls `$m!` with the (variant, Rust type) pairs that `Value` and `Array` share, so each
/// per-type `match` below is written once instead of twelve times.
macro_rules! elem_types {
    ($m:ident) => {
        $m!(
            U8 u8, I8 i8, U16 u16, I16 i16, U32 u32, I32 i32, F32 f32, Bool bool,
            String String, U64 u64, I64 i64, F64 f64
        )
    };
}

impl Value {
    pub fn value_type(&self) -> ValueType {
        macro_rules! arms {
            ($($v:ident $t:ty),*) => {
                match self {
                    $(Value::$v(_) => ValueType::$v,)*
                    Value::Array(_) => ValueType::Array,
                }
            };
        }
        elem_types!(arms)
    }

    /// A scalar of type `ty` from its text (`true`/`false` for a bool, decimal numbers).
    pub fn parse_scalar(ty: ValueType, text: &str) -> Result<Value, String> {
        let bad = || format!("{text:?} is not a {}", ty.name());
        macro_rules! arms {
            ($($v:ident $t:ty),*) => {
                match ty {
                    ValueType::String => Ok(Value::String(text.to_string())),
                    ValueType::Array => Err("arrays cannot be given as text".to_string()),
                    $(ValueType::$v => text.trim().parse::<$t>().map(Value::$v).map_err(|_| bad()),)*
                }
            };
        }
        macro_rules! scalars {
            ($m:ident) => {
                $m!(U8 u8, I8 i8, U16 u16, I16 i16, U32 u32, I32 i32, F32 f32, Bool bool,
                    U64 u64, I64 i64, F64 f64)
            };
        }
        scalars!(arms)
    }

    /// The value as u64 if it is any integer type that fits.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// F32 as is; F64 rounded to the nearest f32 (GGUF writers differ in which they use).
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            Value::F32(v) => Some(v),
            Value::F64(v) => Some(v as f32),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Array> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// JSON form for `llq inspect --json`. Floats become JSON numbers (non-finite ones `null`,
    /// which JSON cannot express).
    pub fn to_json(&self) -> serde_json::Value {
        // f32 goes through f64: serde_json renders f32 differently when another crate in the
        // build enables its `arbitrary_precision` feature.
        if let Value::F32(x) = self {
            return serde_json::Value::from(f64::from(*x));
        }
        macro_rules! arms {
            ($($v:ident $t:ty),*) => {
                match self {
                    $(Value::$v(x) => serde_json::Value::from(x.clone()),)*
                    Value::Array(a) => a.to_json(),
                }
            };
        }
        elem_types!(arms)
    }

    /// Read a value of type `ty` (its type id has already been read).
    pub(crate) fn decode(c: &mut Cursor<'_>, ty: ValueType) -> Result<Value, String> {
        macro_rules! arms {
            ($($v:ident $t:ty),*) => {
                match ty {
                    $(ValueType::$v => Value::$v(c.read::<$t>()?),)*
                    ValueType::Array => Value::Array(Array::decode(c)?),
                }
            };
        }
        Ok(elem_types!(arms))
    }

    /// Write the type id, then the value.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        self.value_type().id().encode(out);
        macro_rules! arms {
            ($($v:ident $t:ty),*) => {
                match self {
                    $(Value::$v(x) => x.encode(out),)*
                    Value::Array(a) => a.encode(out),
                }
            };
        }
        elem_types!(arms)
    }
}

impl Array {
    pub fn len(&self) -> usize {
        macro_rules! arms {
            ($($v:ident $t:ty),*) => { match self { $(Array::$v(x) => x.len(),)* } };
        }
        elem_types!(arms)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn elem_type(&self) -> ValueType {
        macro_rules! arms {
            ($($v:ident $t:ty),*) => { match self { $(Array::$v(_) => ValueType::$v,)* } };
        }
        elem_types!(arms)
    }

    pub fn to_json(&self) -> serde_json::Value {
        // As for scalars: f32 through f64, whatever serde_json's features.
        if let Array::F32(v) = self {
            return v
                .iter()
                .map(|&x| serde_json::Value::from(f64::from(x)))
                .collect();
        }
        macro_rules! arms {
            ($($v:ident $t:ty),*) => {
                match self { $(Array::$v(x) => serde_json::Value::from(x.clone()),)* }
            };
        }
        elem_types!(arms)
    }

    /// Element type id, u64 count, elements. Nested arrays are refused.
    fn decode(c: &mut Cursor<'_>) -> Result<Array, String> {
        let id = c.read::<u32>()?;
        let ty =
            ValueType::from_id(id).ok_or_else(|| format!("unknown array element type {id}"))?;
        let count = c.read::<u64>()?;
        macro_rules! arms {
            ($($v:ident $t:ty),*) => {
                match ty {
                    $(ValueType::$v => Array::$v(decode_vec::<$t>(c, count)?),)*
                    ValueType::Array => return Err("nested arrays are not supported".into()),
                }
            };
        }
        Ok(elem_types!(arms))
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.elem_type().id().encode(out);
        (self.len() as u64).encode(out);
        macro_rules! arms {
            ($($v:ident $t:ty),*) => {
                match self { $(Array::$v(x) => x.iter().for_each(|e| e.encode(out)),)* }
            };
        }
        elem_types!(arms)
    }
}

/// `count` elements, refused before allocating if the input cannot hold that many.
fn decode_vec<T: Elem>(c: &mut Cursor<'_>, count: u64) -> Result<Vec<T>, String> {
    c.check_count(count, T::MIN_SIZE, "array element")?;
    // check_count bounded count by the input length, which is a usize.
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        out.push(c.read::<T>()?);
    }
    Ok(out)
}
