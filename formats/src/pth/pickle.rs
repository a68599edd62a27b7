//! A restricted pickle reader: the protocol 2..=5 opcodes torch.save emits, evaluated as data.
//!
//! Nothing is executed: globals resolve through torch.rs's allow-list and "calls" build tensor
//! descriptions. Values are owned trees, so the memo holds a snapshot taken at BINPUT time
//! rather than a shared reference; torch memoizes containers before filling them and never
//! fetches them back afterwards, and trees cannot hold cycles. Because BINGET copies, every
//! value carries its cost and a budget caps the total (copies included), so a few bytes of
//! "fetch the same big list a million times" cannot exhaust memory; nesting depth is capped too,
//! which also keeps recursive drops shallow.

use super::torch::{self, Global, StorageRef, TensorRef};
use std::collections::HashMap;

/// A Python value as far as a torch state dict needs.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// Insertion-ordered pairs; duplicate keys are left for the consumer to reject.
    Dict(Vec<(Value, Value)>),
    Global(Global),
    Storage(StorageRef),
    Tensor(TensorRef),
}

impl Value {
    /// A short name for error messages (a Debug dump of hostile data could be huge).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
            Value::Global(_) => "a global",
            Value::Storage(_) => "a storage",
            Value::Tensor(_) => "a tensor",
        }
    }
}

/// Deepest container nesting accepted; a state dict needs about 4.
const MAX_DEPTH: usize = 256;
/// Total cost of all values created, memo and BINGET copies included.
const MAX_COST: usize = 1 << 20;
/// Strings cost one unit per this many bytes (plus one), so copying long strings is paid for.
const STRING_BYTES_PER_UNIT: usize = 64;

/// Opcode bytes, named as in CPython's pickle module.
mod op {
    pub const PROTO: u8 = 0x80;
    pub const FRAME: u8 = 0x95;
    pub const STOP: u8 = b'.';
    pub const MARK: u8 = b'(';
    pub const POP: u8 = b'0';
    pub const POP_MARK: u8 = b'1';
    pub const NONE: u8 = b'N';
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const BININT: u8 = b'J';
    pub const BININT1: u8 = b'K';
    pub const BININT2: u8 = b'M';
    pub const LONG1: u8 = 0x8a;
    pub const BINFLOAT: u8 = b'G';
    pub const BINUNICODE: u8 = b'X';
    pub const SHORT_BINUNICODE: u8 = 0x8c;
    pub const BINUNICODE8: u8 = 0x8d;
    pub const EMPTY_DICT: u8 = b'}';
    pub const EMPTY_LIST: u8 = b']';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const TUPLE: u8 = b't';
    pub const TUPLE1: u8 = 0x85;
    pub const LIST: u8 = b'l';
    pub const DICT: u8 = b'd';
    pub const APPEND: u8 = b'a';
    pub const APPENDS: u8 = b'e';
    pub const SETITEM: u8 = b's';
    pub const SETITEMS: u8 = b'u';
    pub const BINPUT: u8 = b'q';
    pub const LONG_BINPUT: u8 = b'r';
    pub const MEMOIZE: u8 = 0x94;
    pub const BINGET: u8 = b'h';
    pub const LONG_BINGET: u8 = b'j';
    pub const GLOBAL: u8 = b'c';
    pub const STACK_GLOBAL: u8 = 0x93;
    pub const REDUCE: u8 = b'R';
    pub const NEWOBJ: u8 = 0x81;
    pub const BINPERSID: u8 = b'Q';
    pub const BUILD: u8 = b'b';
    pub const TUPLE3: u8 = 0x87;
}

/// A stack or memo slot: the value, its nesting depth and its cost.
#[derive(Clone)]
struct Item {
    value: Value,
    depth: usize,
    cost: usize,
}

struct Machine<'a> {
    input: &'a [u8],
    pos: usize,
    stack: Vec<Item>,
    /// Stack heights at each MARK.
    marks: Vec<usize>,
    memo: HashMap<u32, Item>,
    spent: usize,
}

/// Evaluate a whole pickle and return the object STOP leaves on the stack.
pub fn parse(input: &[u8]) -> Result<Value, String> {
    let mut m = Machine {
        input,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        spent: 0,
    };
    loop {
        let at = m.pos;
        let op = m.take(1)?[0];
        if m.step(op).map_err(|e| format!("pickle offset {at}: {e}"))? {
            let top = m.pop()?;
            return Ok(top.value);
        }
    }
}

impl Machine<'_> {
    /// Execute one opcode; true at STOP.
    fn step(&mut self, op: u8) -> Result<bool, String> {
        match op {
            op::PROTO => {
                let v = self.take(1)?[0];
                if !(2..=5).contains(&v) {
                    return Err(format!("unsupported pickle protocol {v}"));
                }
            }
            // FRAME only announces the next frame's length; the whole pickle is already in memory.
            op::FRAME => drop(self.take(8)?),
            op::STOP => return Ok(true),
            op::MARK => {
                if self.marks.len() >= MAX_DEPTH {
                    return Err(too_deep());
                }
                self.marks.push(self.stack.len());
            }
            op::POP => drop(self.pop()?),
            op::POP_MARK => drop(self.pop_mark()?),
            op::NONE => self.push_leaf(Value::None)?,
            op::NEWTRUE => self.push_leaf(Value::Bool(true))?,
            op::NEWFALSE => self.push_leaf(Value::Bool(false))?,
            op::BININT => {
                let v = i32::from_le_bytes(self.array()?);
                self.push_leaf(Value::Int(v.into()))?
            }
            op::BININT1 => {
                let v = self.take(1)?[0];
                self.push_leaf(Value::Int(v.into()))?
            }
            op::BININT2 => {
                let v = u16::from_le_bytes(self.array()?);
                self.push_leaf(Value::Int(v.into()))?
            }
            op::LONG1 => {
                let n = self.take(1)?[0] as usize;
                let v = long(self.take(n)?)?;
                self.push_leaf(Value::Int(v))?
            }
            op::BINFLOAT => {
                let v = f64::from_be_bytes(self.array()?);
                self.push_leaf(Value::Float(v))?
            }
            op::BINUNICODE => {
                let n = u32::from_le_bytes(self.array()?) as usize;
                self.push_str(n)?
            }
            op::SHORT_BINUNICODE => {
                let n = self.take(1)?[0] as usize;
                self.push_str(n)?
            }
            op::BINUNICODE8 => {
                let n = u64::from_le_bytes(self.array()?);
                self.push_str(usize::try_from(n).map_err(|_| truncated())?)?
            }
            op::EMPTY_DICT => self.push_leaf(Value::Dict(Vec::new()))?,
            op::EMPTY_LIST => self.push_leaf(Value::List(Vec::new()))?,
            op::EMPTY_TUPLE => self.push_leaf(Value::Tuple(Vec::new()))?,
            op::TUPLE => {
                let items = self.pop_mark()?;
                self.push_container(items, Value::Tuple)?
            }
            op::TUPLE1..=op::TUPLE3 => {
                let items = self.pop_n((op - op::TUPLE1 + 1) as usize)?;
                self.push_container(items, Value::Tuple)?
            }
            op::LIST => {
                let items = self.pop_mark()?;
                self.push_container(items, Value::List)?
            }
            op::DICT => {
                let items = self.pop_mark()?;
                self.push_leaf(Value::Dict(Vec::new()))?;
                self.extend_top(items)?
            }
            op::APPEND => {
                let item = self.pop()?;
                self.extend_top(vec![item])?
            }
            op::APPENDS | op::SETITEM | op::SETITEMS => {
                let items = match op {
                    op::SETITEM => self.pop_n(2)?,
                    _ => self.pop_mark()?,
                };
                self.extend_top(items)?
            }
            op::BINPUT => {
                let i = self.take(1)?[0];
                self.memo_put(i.into())?
            }
            op::LONG_BINPUT => {
                let i = u32::from_le_bytes(self.array()?);
                self.memo_put(i)?
            }
            op::MEMOIZE => {
                let i = u32::try_from(self.memo.len()).map_err(|_| too_large())?;
                self.memo_put(i)?
            }
            op::BINGET => {
                let i = self.take(1)?[0];
                self.memo_get(i.into())?
            }
            op::LONG_BINGET => {
                let i = u32::from_le_bytes(self.array()?);
                self.memo_get(i)?
            }
            op::GLOBAL => {
                let module = self.line()?;
                let name = self.line()?;
                let g = torch::global(&module, &name)?;
                self.push_leaf(Value::Global(g))?
            }
            op::STACK_GLOBAL => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Value::Str(module), Value::Str(name)) = (module.value, name.value) else {
                    return Err("STACK_GLOBAL needs two strings".into());
                };
                let g = torch::global(&module, &name)?;
                self.push_leaf(Value::Global(g))?
            }
            op::REDUCE | op::NEWOBJ => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let Value::Global(g) = &callable.value else {
                    return Err(format!("cannot call {}", callable.value.kind()));
                };
                let Value::Tuple(arg_values) = args.value else {
                    return Err(format!(
                        "call arguments are {}, not a tuple",
                        args.value.kind()
                    ));
                };
                let result = match op {
                    op::REDUCE => torch::call(g, arg_values)?,
                    _ => torch::new_object(g, arg_values)?,
                };
                // The result is built from the arguments, so it costs at most what they did.
                self.stack.push(Item {
                    value: result,
                    depth: args.depth,
                    cost: args.cost + callable.cost,
                });
            }
            op::BINPERSID => {
                let pid = self.pop()?;
                let value = torch::persistent_load(pid.value)?;
                self.stack.push(Item { value, ..pid });
            }
            op::BUILD => {
                // OrderedDict state dicts carry attributes such as `_metadata` (per-module
                // versions); they say nothing about tensor bytes, so they are dropped.
                let state = self.pop()?;
                let target = self.stack.last().ok_or_else(underflow)?;
                if !matches!(target.value, Value::Dict(_)) {
                    return Err(format!(
                        "BUILD (set state) on {} is not supported",
                        target.value.kind()
                    ));
                }
                drop(state)
            }
            _ => return Err(format!("unsupported pickle opcode 0x{op:02x}")),
        }
        Ok(false)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.input.len())
            .ok_or_else(truncated)?;
        let bytes = &self.input[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// A newline-terminated text argument (GLOBAL's module and name).
    fn line(&mut self) -> Result<String, String> {
        let rest = &self.input[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(truncated)?;
        let text =
            std::str::from_utf8(&rest[..n]).map_err(|_| "GLOBAL name is not UTF-8".to_string())?;
        self.pos += n + 1;
        Ok(text.to_string())
    }

    fn charge(&mut self, cost: usize) -> Result<(), String> {
        self.spent = self.spent.saturating_add(cost);
        if self.spent > MAX_COST {
            return Err(too_large());
        }
        Ok(())
    }

    fn push_leaf(&mut self, value: Value) -> Result<(), String> {
        self.charge(1)?;
        self.stack.push(Item {
            value,
            depth: 1,
            cost: 1,
        });
        Ok(())
    }

    fn push_str(&mut self, n: usize) -> Result<(), String> {
        let bytes = self.take(n)?;
        let text = std::str::from_utf8(bytes).map_err(|_| "string is not UTF-8".to_string())?;
        let value = Value::Str(text.to_string());
        let cost = 1 + n / STRING_BYTES_PER_UNIT;
        self.charge(cost)?;
        self.stack.push(Item {
            value,
            depth: 1,
            cost,
        });
        Ok(())
    }

    /// Wrap `items` into a new tuple or list.
    fn push_container(
        &mut self,
        items: Vec<Item>,
        make: fn(Vec<Value>) -> Value,
    ) -> Result<(), String> {
        self.charge(1)?;
        let depth = 1 + items.iter().map(|i| i.depth).max().unwrap_or(0);
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        let cost = 1 + items.iter().map(|i| i.cost).sum::<usize>();
        let value = make(items.into_iter().map(|i| i.value).collect());
        self.stack.push(Item { value, depth, cost });
        Ok(())
    }

    /// APPEND(S) / SETITEM(S): add `items` to the list or dict on top of the stack.
    fn extend_top(&mut self, items: Vec<Item>) -> Result<(), String> {
        let top = self.stack.last_mut().ok_or_else(underflow)?;
        for item in &items {
            top.depth = top.depth.max(item.depth + 1);
            top.cost = top.cost.saturating_add(item.cost);
        }
        if top.depth > MAX_DEPTH {
            return Err(too_deep());
        }
        let mut values = items.into_iter().map(|i| i.value);
        match &mut top.value {
            Value::List(list) => list.extend(values),
            Value::Dict(dict) => {
                while let Some(k) = values.next() {
                    let v = values
                        .next()
                        .ok_or("SETITEMS with an odd number of items")?;
                    dict.push((k, v));
                }
            }
            other => return Err(format!("cannot add items to {}", other.kind())),
        }
        Ok(())
    }

    fn memo_put(&mut self, index: u32) -> Result<(), String> {
        let top = self.stack.last().ok_or_else(underflow)?.clone();
        self.charge(top.cost)?;
        self.memo.insert(index, top);
        Ok(())
    }

    fn memo_get(&mut self, index: u32) -> Result<(), String> {
        let item = self
            .memo
            .get(&index)
            .ok_or_else(|| format!("memo key {index} was never stored"))?
            .clone();
        self.charge(item.cost)?;
        self.stack.push(item);
        Ok(())
    }

    fn pop(&mut self) -> Result<Item, String> {
        self.pop_n(1)?.pop().ok_or_else(underflow)
    }

    /// The top `n` items, which must all lie above the latest MARK (as in CPython).
    fn pop_n(&mut self, n: usize) -> Result<Vec<Item>, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        let split = self
            .stack
            .len()
            .checked_sub(n)
            .filter(|&s| s >= floor)
            .ok_or_else(underflow)?;
        Ok(self.stack.split_off(split))
    }

    /// Everything above the latest MARK, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<Item>, String> {
        let mark = self.marks.pop().ok_or("no MARK on the stack")?;
        Ok(self.stack.split_off(mark))
    }
}

/// LONG1 payload: little-endian two's complement, at most 8 bytes for an i64.
fn long(bytes: &[u8]) -> Result<i64, String> {
    if bytes.len() > 8 {
        return Err(format!("{}-byte integer is too large", bytes.len()));
    }
    let fill = if bytes.last().is_some_and(|&b| b & 0x80 != 0) {
        0xff
    } else {
        0
    };
    let mut b = [fill; 8];
    b[..bytes.len()].copy_from_slice(bytes);
    Ok(i64::from_le_bytes(b))
}

fn truncated() -> String {
    "pickle data ends early (truncated?)".into()
}

fn underflow() -> String {
    "pickle stack underflow (malformed pickle)".into()
}

fn too_deep() -> String {
    format!("pickle too deeply nested (more than {MAX_DEPTH} levels)")
}

fn too_large() -> String {
    format!("pickle too large (more than {MAX_COST} objects, memo copies included)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn s(text: &str) -> Value {
        Value::Str(text.into())
    }

    /// Python's `{'a': [1, 2.5, None, True, False, 'xxx', (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4),
    /// -5, 70000, 1 << 40, -(1 << 40)], 'b': {}, 'c': []}`.
    fn expected() -> Value {
        let t = |n: i64| Value::Tuple((1..=n).map(Value::Int).collect());
        let list = vec![
            Value::Int(1),
            Value::Float(2.5),
            Value::None,
            Value::Bool(true),
            Value::Bool(false),
            s("xxx"),
            t(1),
            t(2),
            t(3),
            t(4),
            Value::Int(-5),
            Value::Int(70000),
            Value::Int(1 << 40),
            Value::Int(-(1 << 40)),
        ];
        Value::Dict(vec![
            (s("a"), Value::List(list)),
            (s("b"), Value::Dict(vec![])),
            (s("c"), Value::List(vec![])),
        ])
    }

    #[test]
    fn python_protocol_2_and_5_output() {
        // pickle.dumps(<expected()>, protocol=2) and protocol=5, from CPython 3.
        let p2 = "80027d71002858010000006171015d7102284b014740040000000000004e888958030000007878787103\
                  4b018571044b014b028671054b014b024b03877106284b014b024b034b047471074afbffffff4a7011\
                  01008a060000000000018a060000000000ff6558010000006271087d7109580100000063710a5d710b752e";
        let p5 = "80059564000000000000007d94288c0161945d94284b014740040000000000004e88898c0378787894\
                  4b0185944b014b0286944b014b024b038794284b014b024b034b0474944afbffffff4a701101008a06\
                  0000000000018a060000000000ff658c0162947d948c0163945d94752e";
        for p in [p2, p5] {
            assert_eq!(parse(&hex(p)).unwrap(), expected());
        }
    }

    #[test]
    fn less_common_opcodes() {
        // DICT, LIST, SETITEM, APPEND, POP, POP_MARK, BININT2, BINUNICODE8, LONG_BINPUT/GET.
        let mut p = vec![
            0x80, 2, b'(', b'N', b'1', b'(', b'l', b'M', 0x34, 0x12, b'a', b'0',
        ];
        p.extend([b'(', b'd', 0x8d, 2, 0, 0, 0, 0, 0, 0, 0, b'h', b'i']);
        p.extend([
            b'r', 7, 1, 0, 0, b'j', 7, 1, 0, 0, b'0', b'K', 9, b's', b'.',
        ]);
        let want = Value::Dict(vec![(s("hi"), Value::Int(9))]);
        assert_eq!(parse(&p).unwrap(), want);
    }

    #[test]
    fn long1_is_twos_complement() {
        assert_eq!(long(&[]).unwrap(), 0);
        assert_eq!(long(&[0xff]).unwrap(), -1);
        assert_eq!(long(&[0, 0, 0, 0x80, 0]).unwrap(), 1 << 31);
        assert_eq!(long(&[0; 8]).unwrap(), 0);
        assert!(long(&[0; 9]).is_err());
    }
}
